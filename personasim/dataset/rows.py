"""Rows for each table, made from the typed records: interactions, messages, samples, usage, failures."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from personasim.judgement import Score
from personasim.personas import Assignment, Persona
from personasim.records import Failure, Interaction, Outcome, Usage
from personasim.training import TrainingSample


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def interaction_row(ix: Interaction, run_id: str) -> dict[str, Any]:
    noised = [n for n in ix.noise if n.was_noised]
    calls = len(ix.usage)
    return {
        "interaction_id": ix.interaction_id, "persona_id": ix.persona_id, "query_id": ix.query_id,
        "persona_features": list(ix.persona_features.items()),
        "original_query": ix.original_query, "initial_query": ix.initial_query,
        "style_transferred": ix.style_transferred,
        "messages": [{"role": m.role, "content": m.content, "timestamp": _ts(m.timestamp), "turn": m.turn,
                      "clean_text": m.clean_text, "was_noised": m.was_noised if m.role == "user" else None,
                      "finish_reason": m.finish_reason, "truncated": m.truncated} for m in ix.messages],
        "num_turns": ix.num_turns, "target_turns": ix.target_turns, "termination_reason": ix.termination_reason,
        "assistant_model": ix.assistant_model, "assistant_provider": ix.assistant_provider,
        "user_turns": ix.user_turns, "noised_turns": len(noised),
        "noise_layers": [n.layer for n in noised], "noise_strategies": sorted({s for n in noised
                                                                               for s in n.applied_strategies}),
        "noise_fallbacks": len(ix.noise_fallbacks), "style_transfer_fallback": ix.style_transfer_fallback,
        "truncated_turns": ix.truncated_turns, "violations": [v.to_dict() for v in ix.violations],
        "llm_calls": calls, "input_tokens": sum(u.input_tokens for u in ix.usage),
        "output_tokens": sum(u.output_tokens for u in ix.usage),
        "config_fingerprint": ix.config_fingerprint, "seed": ix.seed, "run_id": run_id,
        "created_at": _ts(ix.created_at),
        "metadata_json": json.dumps(ix.metadata, ensure_ascii=False, sort_keys=True),
        "system_prompt": ix.system_prompt,
    }


def message_rows(ix: Interaction, run_id: str) -> list[dict[str, Any]]:
    rows = []
    for position, m in enumerate(ix.messages):
        noise = m.noise if m.noise is not None and m.noise.activated else None
        rows.append({
            "interaction_id": ix.interaction_id, "persona_id": ix.persona_id, "position": position,
            "turn": m.turn, "role": m.role, "content": m.content, "clean_text": m.clean_text,
            "was_noised": m.was_noised if m.role == "user" else None,
            "noise_layer": noise.layer if noise else None,
            "noise_strategies": list(noise.applied_strategies) if noise else [],
            "noise_fallback": noise.fallback_reason if noise else None,
            "model": m.model, "provider": m.provider, "finish_reason": m.finish_reason, "truncated": m.truncated,
            "timestamp": _ts(m.timestamp), "run_id": run_id, "verdicts": [v.to_dict() for v in m.verdicts],
        })
    return rows


def score_rows(interaction_id: str, scores: Iterable[Score], run_id: str) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    return [{**s.to_dict(), "interaction_id": interaction_id, "run_id": run_id, "created_at": now} for s in scores]


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


def failure_row(failure: Failure, run_id: str) -> dict[str, Any]:
    return {**failure.to_dict(), "run_id": run_id, "failed_at": datetime.now(timezone.utc)}


def usage_rows(outcome: Outcome | Persona, run_id: str) -> list[dict[str, Any]]:
    """One row per call a pair (or a persona's system prompt) paid for, marked with what it paid for."""
    kind = "persona" if isinstance(outcome, Persona) else "failure" if isinstance(outcome, Failure) else "interaction"
    return paid_rows(outcome.usage, run_id, kind)


def paid_rows(usage: Iterable[Usage], run_id: str, paid_for: str) -> list[dict[str, Any]]:
    """One row per call, marked with what it paid for: interaction, failure, persona or judge."""
    return [{**u.to_dict(), "created_at": _ts(u.created_at), "run_id": run_id, "outcome": paid_for} for u in usage]


def persona_row(persona: Persona, run_id: str) -> dict[str, Any]:
    return {
        "persona_id": persona.persona_id, "persona_index": persona.index,
        "persona_features": list(persona.features.items()), "system_prompt": persona.system_prompt,
        "prompt_source": persona.prompt_source, "prompt_fallback": persona.prompt_fallback,
        "violations": [v.to_dict() for v in persona.violations], "llm_calls": len(persona.usage),
        "input_tokens": sum(u.input_tokens for u in persona.usage),
        "output_tokens": sum(u.output_tokens for u in persona.usage),
        "formulator_model": _model(persona.usage), "run_id": run_id, "created_at": datetime.now(timezone.utc),
        "metadata_json": json.dumps(dict(persona.metadata), ensure_ascii=False, sort_keys=True),
    }


def _model(usage: tuple[Usage, ...]) -> str | None:
    return usage[-1].model if usage else None


def stored_persona(row: dict[str, Any]) -> Persona:
    """The persona a `personas` row was written from (its calls are in token_usage)."""
    return Persona(row["persona_id"], dict(row["persona_features"]), row["persona_index"], row["system_prompt"],
                   row["prompt_source"], row["prompt_fallback"], json.loads(row["metadata_json"] or "{}"))


def assignment_row(assignment: Assignment, run_id: str) -> dict[str, Any]:
    return {**{k: v for k, v in assignment.to_dict().items() if k != "metadata"}, "run_id": run_id,
            "metadata_json": json.dumps(dict(assignment.metadata), ensure_ascii=False, sort_keys=True, default=str),
            "created_at": datetime.now(timezone.utc)}


def stored_assignment(row: dict[str, Any]) -> Assignment:
    return Assignment(row["persona_id"], row["query_id"], row["original_query"], row["position"],
                      bool(row["reused"]), row["matched"], row["target_turns"],
                      json.loads(row["metadata_json"] or "{}"), row["source"] or "")
