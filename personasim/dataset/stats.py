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
from personasim.llm.ledger import TALLY as CALL_TALLY
from personasim.pricing import estimate_cost

TALLY = (*CALL_TALLY, "batch_calls")


def usage_groups(usage: pa.Table) -> list[dict[str, Any]]:
    """Calls and tokens per (module, model, batch) of usage rows, summed in Arrow: the books need
    nothing finer, and a dict per call would hold hundreds of MB for a large dataset. Rows written
    before cached tokens and batches were booked count as uncached and online."""
    usage = usage.set_column(usage.schema.get_field_index("cached_tokens"), "cached_tokens",
                             pc.fill_null(usage.column("cached_tokens"), 0))
    usage = usage.set_column(usage.schema.get_field_index("batch"), "batch", pc.fill_null(usage.column("batch"), False))
    grouped = usage.group_by(["module", "model", "batch"]).aggregate(
        [("input_tokens", "sum"), ("cached_tokens", "sum"), ("output_tokens", "sum"), ("model", "count")])
    return [{"module": g["module"], "model": g["model"], "batch": g["batch"], "calls": g["model_count"],
             "batch_calls": g["model_count"] if g["batch"] else 0, "input_tokens": g["input_tokens_sum"],
             "cached_tokens": g["cached_tokens_sum"], "output_tokens": g["output_tokens_sum"]}
            for g in grouped.to_pylist()]


def tokens_by(groups: Iterable[Mapping[str, Any]], key: str) -> dict[str, dict[str, int]]:
    """Calls and tokens of usage groups, summed by `key` (model, module)."""
    out: dict[str, dict[str, int]] = {}
    for group in groups:
        totals = out.setdefault(group[key], dict.fromkeys(TALLY, 0))
        for field in totals:
            totals[field] += group[field]
    return out


def _books(usage: pa.Table, pricing: Mapping[str, PriceConfig]) -> dict[str, Any]:
    groups = usage_groups(usage)
    modules = {g["module"] for g in groups}
    return {
        **{field: sum(g[field] for g in groups) for field in TALLY},
        "by_module": tokens_by(groups, "module"), "by_model": tokens_by(groups, "model"),
        "cost": {**estimate_cost(groups, pricing),
                 "by_module": {m: _priced([g for g in groups if g["module"] == m], pricing) for m in sorted(modules)},
                 # the same calls at the online price, then with no prompt cache either: what each saved
                 "online_usd": estimate_cost(groups, pricing, batch=False)["total_usd"],
                 "uncached_usd": estimate_cost([{**g, "cached_tokens": 0} for g in groups], pricing,
                                               batch=False)["total_usd"]},
    }


def _priced(groups: list[dict[str, Any]], pricing: Mapping[str, PriceConfig]) -> float | None:
    """What these calls cost; None when a model among them has no price (a sum would undercount)."""
    cost = estimate_cost(groups, pricing)
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
    usage = dataset.table("token_usage", ["module", "model", "input_tokens", "cached_tokens", "output_tokens", "batch",
                                          "outcome"])
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
        ("tokens in / out", f"{tokens['input_tokens']:,} / {tokens['output_tokens']:,}{_cached(tokens)}"),
        ("cost (USD)", f"{cost['total_usd']}{unpriced}{_discounts(tokens, cost)}"),
        ("spent, failed and interrupted pairs included",
         f"{spent['calls']:,} calls, {spent['input_tokens']:,} / {spent['output_tokens']:,} tokens, "
         f"USD {spent['cost']['total_usd']}"),
    ]
    return rows


def _cached(tokens: Mapping[str, Any]) -> str:
    cached, given = tokens.get("cached_tokens", 0), tokens["input_tokens"]
    return f" ({cached:,} of the input from the prompt cache, {cached / given:.1%})" if cached and given else ""


def _discounts(tokens: Mapping[str, Any], cost: Mapping[str, Any]) -> str:
    """What the same calls would have cost at the online price, when a batch API or the cache took some off."""
    online = cost.get("online_usd")
    if not tokens.get("batch_calls") and not tokens.get("cached_tokens") or online is None:
        return ""
    batch = f"; {tokens['batch_calls']:,} calls through a batch API" if tokens.get("batch_calls") else ""
    return f" (at the online price: USD {online}; without the prompt cache too: USD {cost['uncached_usd']}{batch})"
