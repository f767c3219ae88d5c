"""The statistics summary of a dataset (stats.json): counts, turns, noise, personas, tokens, cost.

`tokens` and `cost` are the dataset's own: the calls its interactions and its personas' system
prompts paid for, the same after any number of kills and resumes as for one clean run. `spent`
is everything paid for into the dataset, failed and interrupted pairs included.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from personasim.config import DistractorConfig, PriceConfig
from personasim.dataset.figures import Row
from personasim.dataset.judging_stats import gate, judging
from personasim.dataset.persona_stats import persona_statistics
from personasim.dataset.quality import INTERACTION_COLUMNS, quality
from personasim.dataset.realism import realism
from personasim.dataset.spend import read_spend
from personasim.dataset.store import Dataset
from personasim.pricing import estimate_cost


def usage_groups(usage: pa.Table) -> list[dict[str, Any]]:
    """Calls and tokens per (module, model) of usage rows, summed in Arrow: the books need nothing
    finer, and a dict per call would hold hundreds of MB for a large dataset."""
    grouped = usage.group_by(["module", "model"]).aggregate(
        [("input_tokens", "sum"), ("output_tokens", "sum"), ("model", "count")])
    return [{"module": g["module"], "model": g["model"], "calls": g["model_count"],
             "input_tokens": g["input_tokens_sum"], "output_tokens": g["output_tokens_sum"]}
            for g in grouped.to_pylist()]


def tokens_by(groups: Iterable[Mapping[str, Any]], key: str) -> dict[str, dict[str, int]]:
    """Calls and tokens of usage groups, summed by `key` (model, module)."""
    out: dict[str, dict[str, int]] = {}
    for group in groups:
        totals = out.setdefault(group[key], {"calls": 0, "input_tokens": 0, "output_tokens": 0})
        for field in totals:
            totals[field] += group[field]
    return out


def _books(usage: pa.Table, pricing: Mapping[str, PriceConfig]) -> dict[str, Any]:
    groups = usage_groups(usage)
    by_model = tokens_by(groups, "model")
    modules = {g["module"] for g in groups}
    return {
        "calls": usage.num_rows,
        "input_tokens": sum(g["input_tokens"] for g in groups),
        "output_tokens": sum(g["output_tokens"] for g in groups),
        "by_module": tokens_by(groups, "module"), "by_model": by_model,
        "cost": {**estimate_cost(by_model, pricing),
                 "by_module": {m: _priced(tokens_by((g for g in groups if g["module"] == m), "model"), pricing)
                               for m in sorted(modules)}},
    }


def _priced(tokens_by_model: dict[str, dict[str, int]], pricing: Mapping[str, PriceConfig]) -> float | None:
    """What these tokens cost; None when a model among them has no price (a sum would undercount)."""
    cost = estimate_cost(tokens_by_model, pricing)
    return None if cost["unpriced_models"] else cost["total_usd"]


def _variants(interactions: pa.Table, samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each variant (config fingerprint) counted apart: its seed, interactions and split sizes."""
    out: dict[str, dict[str, Any]] = {}
    for row in interactions.select(["config_fingerprint", "seed"]).to_pylist():
        entry = out.setdefault(row["config_fingerprint"], {"seed": row["seed"], "interactions": 0, "splits": {}})
        entry["interactions"] += 1
    for sample in samples:
        splits = out.setdefault(sample["variant"], {"seed": None, "interactions": 0, "splits": {}})["splits"]
        splits[sample["split"]] = splits.get(sample["split"], 0) + 1
    return out


def compute_statistics(dataset: Dataset, pricing: Mapping[str, PriceConfig] | None = None,
                       distractor: DistractorConfig | None = None) -> dict[str, Any]:
    """The whole dataset's summary; `distractor` (the run's) is what the noise is measured against."""
    prices = pricing or {}
    ix = dataset.table("interactions", [  # read once: the summary, the variants and the quality section
        "interaction_id", "persona_id", "num_turns", "user_turns", "noised_turns", "noise_layers", "assistant_model",
        "config_fingerprint", "seed", *INTERACTION_COLUMNS])
    usage = dataset.table("token_usage", ["module", "model", "input_tokens", "output_tokens", "outcome"])
    paid_by_interactions = usage.filter(pc.is_in(usage.column("outcome"),
                                                 pa.array(["interaction", "persona", "judge"])))
    failures = dataset.table("failures", ["reason"])
    n = ix.num_rows
    user_turns = pc.sum(ix.column("user_turns")).as_py() or 0
    noised = pc.sum(ix.column("noised_turns")).as_py() or 0
    layers = Counter(layer for row in ix.column("noise_layers").to_pylist() for layer in (row or []))
    books = _books(paid_by_interactions, prices)
    personas = Counter(ix.column("persona_id").to_pylist())
    samples = dataset.table("training", ["variant", "split"]).to_pylist()
    turns = dict(sorted(Counter(ix.column("num_turns").to_pylist()).items()))
    return {
        "interactions": n,
        "failed_pairs": failures.num_rows,
        "personas": len(set(ix.column("persona_id").to_pylist())),
        "messages": int(pc.sum(ix.column("num_turns")).as_py() or 0) * 2,
        "avg_turns": round((pc.mean(ix.column("num_turns")).as_py() or 0.0), 3) if n else 0.0,
        "turn_distribution": turns,
        "noise_rate": round(noised / user_turns, 4) if user_turns else 0.0,
        "layer_distribution": dict(sorted(layers.items())),
        "persona_distribution": dict(sorted(personas.items())),
        "assistant_model_distribution": dict(sorted(Counter(ix.column("assistant_model").to_pylist()).items())),
        "tokens": {k: v for k, v in books.items() if k != "cost"},
        "cost": books["cost"],
        "spent": _books(read_spend(dataset), prices),
        "variants": _variants(ix, samples),
        "failure_reasons": dict(Counter(r.split(":")[0] for r in failures.column("reason").to_pylist()
                                        ).most_common(10)),
        "quality": {**quality(dataset, ix, distractor), "turns_histogram": turns,
                    "interactions_per_persona": {"min": min(personas.values(), default=0),
                                                 "median": statistics.median(personas.values()) if personas else 0,
                                                 "max": max(personas.values(), default=0)}},
        **({"persona_stages": section} if (section := persona_statistics(dataset)) is not None else {}),
        **({"judging": scores} if (scores := judging(dataset)) is not None else {}),
        "gate": gate(dataset), "realism": realism(dataset),
    }


def count_rows(stats: Mapping[str, Any]) -> list[Row]:
    """The headline counts of stats.json as (figure, value) rows: `personasim stats`, the report
    and the Prefect artifact show the same ones."""
    tokens, cost, spent = stats["tokens"], stats["cost"], stats["spent"]
    unpriced = f" (no price for {', '.join(cost['unpriced_models'])})" if cost["unpriced_models"] else ""
    rows: list[tuple[str, Any]] = [
        ("interactions", stats["interactions"]), ("failed pairs", stats["failed_pairs"]),
        ("personas", stats["personas"]), ("messages", stats["messages"]), ("average turns", stats["avg_turns"]),
        ("noise rate (user turns)", stats["noise_rate"]), ("noise layers", stats["layer_distribution"]),
        ("LLM calls", f"{tokens['calls']:,}"),
        ("tokens in / out", f"{tokens['input_tokens']:,} / {tokens['output_tokens']:,}"),
        ("cost (USD)", f"{cost['total_usd']}{unpriced}"),
        ("spent, failed and interrupted pairs included",
         f"{spent['calls']:,} calls, {spent['input_tokens']:,} / {spent['output_tokens']:,} tokens, "
         f"USD {spent['cost']['total_usd']}"),
    ]
    return rows
