"""Rows for each table, from interactions, training samples, usage records and failures."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from personasim.interaction_generator.generator import PairFailure
from personasim.interaction_generator.messages import Interaction
from personasim.llm.usage import UsageRecord
from personasim.training import TrainingSample


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def interaction_row(ix: Interaction, run_id: str) -> dict[str, Any]:
    meta = ix.metadata
    noise = meta.get("noise") or {}
    usage = meta.get("token_usage") or {}
    return {
        "interaction_id": ix.interaction_id, "persona_id": ix.persona_id, "query_id": ix.query_id,
        "persona_features": list(ix.persona_features.items()),
        "original_query": ix.original_query, "initial_query": ix.initial_query,
        "style_transferred": meta.get("style_transferred"),
        "messages": [{"role": m.role, "content": m.content, "timestamp": _ts(m.timestamp),
                      "turn": m.metadata.get("turn"), "clean_text": m.metadata.get("clean_text"),
                      "was_noised": m.metadata.get("was_noised")} for m in ix.messages],
        "num_turns": ix.num_turns, "target_turns": meta.get("target_turns"), "stop_reason": meta.get("stop_reason"),
        "assistant_model": meta.get("assistant_model"), "assistant_provider": meta.get("assistant_provider"),
        "user_turns": noise.get("user_turns"), "noised_turns": noise.get("noised_turns"),
        "noise_layers": noise.get("layers") or [], "noise_strategies": noise.get("strategies") or [],
        "llm_calls": usage.get("calls"), "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "config_fingerprint": meta.get("config_fingerprint"), "seed": meta.get("seed"), "run_id": run_id,
        "created_at": _ts(ix.created_at), "metadata_json": json.dumps(meta, ensure_ascii=False, sort_keys=True),
    }


def message_rows(ix: Interaction, run_id: str) -> list[dict[str, Any]]:
    rows = []
    for position, m in enumerate(ix.messages):
        noise = m.metadata.get("noise") or {}
        rows.append({
            "interaction_id": ix.interaction_id, "persona_id": ix.persona_id, "position": position,
            "turn": m.metadata.get("turn"), "role": m.role, "content": m.content,
            "clean_text": m.metadata.get("clean_text"), "was_noised": m.metadata.get("was_noised"),
            "noise_layer": noise.get("layer"), "noise_strategies": noise.get("applied_strategies") or [],
            "model": m.metadata.get("model"), "provider": m.metadata.get("provider"),
            "timestamp": _ts(m.timestamp), "run_id": run_id,
        })
    return rows


def training_row(sample: TrainingSample, run_id: str) -> dict[str, Any]:
    return {
        "sample_id": sample.sample_id, "interaction_id": sample.metadata.get("interaction_id"),
        "persona_id": sample.persona_id, "persona_features": list(sample.persona_features.items()),
        "original_query": sample.original_query, "initial_query": sample.initial_query,
        "prompt_trajectory": sample.prompt_trajectory, "full_conversation": sample.full_conversation,
        "num_turns": sample.num_turns, "noisy_initial_queries": sample.noisy_initial_queries,
        "metadata_json": json.dumps(sample.metadata, ensure_ascii=False, sort_keys=True), "run_id": run_id,
        "split": sample.split,  # becomes the partition directory, not a column
    }


def training_sample(row: dict[str, Any]) -> TrainingSample:
    """The sample a training row (read back with its `split` partition) was made from."""
    return TrainingSample(
        sample_id=row["sample_id"], persona_id=row["persona_id"], persona_features=dict(row["persona_features"]),
        original_query=row["original_query"], initial_query=row["initial_query"],
        prompt_trajectory=list(row["prompt_trajectory"]), full_conversation=list(row["full_conversation"]),
        num_turns=row["num_turns"], noisy_initial_queries=list(row["noisy_initial_queries"]),
        metadata=json.loads(row["metadata_json"]), split=row["split"],
    )


def failure_row(failure: PairFailure, run_id: str) -> dict[str, Any]:
    return {**failure.to_dict(), "run_id": run_id, "failed_at": datetime.now(timezone.utc)}


def usage_row(record: UsageRecord, run_id: str) -> dict[str, Any]:
    row = record.to_dict()
    row["created_at"] = _ts(record.created_at)
    row["run_id"] = run_id
    return row
