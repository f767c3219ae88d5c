"""The statistics summary of a dataset (stats.json): counts, turns, noise, personas, tokens, cost."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow.compute as pc

from personasim.config import PriceConfig
from personasim.dataset.store import Dataset


def estimate_cost(tokens_by_model: dict[str, dict[str, int]], pricing: dict[str, PriceConfig]) -> dict[str, Any]:
    """USD from the config's price table; models without a price are listed, not guessed."""
    total, by_model, unpriced = 0.0, {}, []
    for model, tokens in sorted(tokens_by_model.items()):
        price = pricing.get(model)
        if price is None:
            unpriced.append(model)
            continue
        cost = (tokens["input_tokens"] * price.input_per_1m + tokens["output_tokens"] * price.output_per_1m) / 1e6
        by_model[model] = round(cost, 6)
        total += cost
    return {"total_usd": round(total, 6), "by_model": by_model, "unpriced_models": unpriced}


def _tokens_by(table, key: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if table.num_rows == 0:
        return out
    grouped = table.group_by(key).aggregate([("input_tokens", "sum"), ("output_tokens", "sum"),
                                             ("input_tokens", "count")])
    for row in grouped.to_pylist():
        out[row[key]] = {"calls": row["input_tokens_count"], "input_tokens": row["input_tokens_sum"],
                         "output_tokens": row["output_tokens_sum"]}
    return out


def compute_statistics(dataset: Dataset, pricing: dict[str, PriceConfig] | None = None) -> dict[str, Any]:
    ix = dataset.table("interactions", ["interaction_id", "persona_id", "num_turns", "user_turns", "noised_turns",
                                        "noise_layers", "assistant_model"])
    usage = dataset.table("token_usage", ["module", "model", "input_tokens", "output_tokens"])
    failures = dataset.table("failures", ["interaction_id", "reason"])
    done = set(ix.column("interaction_id").to_pylist())
    open_failures = {i: r for i, r in zip(failures.column("interaction_id").to_pylist(),
                                          failures.column("reason").to_pylist(), strict=True) if i not in done}
    n = ix.num_rows
    user_turns = pc.sum(ix.column("user_turns")).as_py() or 0
    noised = pc.sum(ix.column("noised_turns")).as_py() or 0
    layers = Counter(layer for row in ix.column("noise_layers").to_pylist() for layer in (row or []))
    tokens_by_model = _tokens_by(usage, "model")
    return {
        "interactions": n,
        "failed_pairs": len(open_failures),
        "personas": len(set(ix.column("persona_id").to_pylist())),
        "messages": int(pc.sum(ix.column("num_turns")).as_py() or 0) * 2,
        "avg_turns": round((pc.mean(ix.column("num_turns")).as_py() or 0.0), 3) if n else 0.0,
        "turn_distribution": dict(sorted(Counter(ix.column("num_turns").to_pylist()).items())),
        "noise_rate": round(noised / user_turns, 4) if user_turns else 0.0,
        "layer_distribution": dict(sorted(layers.items())),
        "persona_distribution": dict(sorted(Counter(ix.column("persona_id").to_pylist()).items())),
        "assistant_model_distribution": dict(sorted(Counter(ix.column("assistant_model").to_pylist()).items())),
        "tokens": {
            "calls": usage.num_rows,
            "input_tokens": int(pc.sum(usage.column("input_tokens")).as_py() or 0),
            "output_tokens": int(pc.sum(usage.column("output_tokens")).as_py() or 0),
            "by_module": _tokens_by(usage, "module"),
            "by_model": tokens_by_model,
        },
        "cost": estimate_cost(tokens_by_model, pricing or {}),
        "failure_reasons": dict(Counter(r.split(":")[0] for r in open_failures.values()).most_common(10)),
    }
