"""The `personas` section of a dataset's statistics: how many personas, how far apart (Hamming
distance), how each dimension's values are spread against the bank's targets, how many queries
each got, what the query pool dropped, and where the system prompts came from."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from typing import Any

from personasim.dataset.figures import Row
from personasim.dataset.store import Dataset
from personasim.personas.stats import coverage, distances, prompt_sources


def persona_statistics(dataset: Dataset) -> dict[str, Any] | None:
    """None when the dataset's pairs did not come from personas it holds."""
    rows = dataset.table("personas", ["persona_id", "persona_features", "prompt_source", "prompt_fallback"]
                         ).to_pylist()
    if not rows:
        return None
    personas = {r["persona_id"]: r for r in rows}  # a persona written twice is one persona
    features = [dict(r["persona_features"]) for r in personas.values()]
    plan = dataset.read_json("personas.json") or {}
    sampling = plan.get("sampling") or {}
    configured = int(sampling.get("min_hamming_distance") or 1)
    per_persona = Counter(dataset.table("assignments", ["persona_id"]).column(0).to_pylist())
    assignments = dataset.table("assignments", ["persona_id", "query_id", "reused", "matched"]).to_pylist()
    unique = {(a["persona_id"], a["query_id"]): a for a in assignments}.values()
    counts = [per_persona.get(p, 0) for p in personas]
    spread = coverage(features, plan.get("targets"))
    gaps = {d: c["max_gap"] for d, c in spread.items() if "max_gap" in c}
    sources = prompt_sources((r["prompt_source"] for r in personas.values()),
                             (r["prompt_fallback"] for r in personas.values()))
    written = sum(n for s, n in sources["sources"].items() if s in ("formulated", "fallback"))
    matched = [a["matched"] for a in unique if a["matched"] is not None]
    return {
        "personas": len(personas),
        "features_per_persona": _spread([len(f) for f in features]),
        "hamming_distance": {**distances(features, configured), "configured_min": configured},
        "coverage": spread,
        "coverage_max_gap": {"dimension": max(gaps, key=lambda d: gaps[d]), "gap": max(gaps.values())} if gaps
        else None,
        "queries_per_persona": _spread(counts),
        "reused_assignments": sum(1 for a in unique if a["reused"]),
        **({"matched_assignments": sum(matched), "unmatched_assignments": len(matched) - sum(matched)}
           if matched else {}),
        "query_pool": (plan.get("assignment") or {}).get("pool"),
        "system_prompts": sources,
        "formulation_fallback_rate": round(sources["sources"].get("fallback", 0) / written, 4) if written else 0.0,
        "sampling": sampling or None,
    }


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": min(values), "mean": round(statistics.fmean(values), 3), "max": max(values)}


def persona_rows(section: Mapping[str, Any] | None) -> list[Row]:
    """The personas section as (figure, value) rows: `personas`, the report, the card."""
    if not section:
        return []
    distance, per_persona = section["hamming_distance"], section["queries_per_persona"]
    nearest = distance["min"] if distance["min_exact"] else f"at least {distance['min']}"
    pool = section.get("query_pool") or {}
    gap = section.get("coverage_max_gap")
    rows: list[tuple[str, Any]] = [
        ("personas", section["personas"]),
        ("features per persona (min / mean / max)", "{min} / {mean} / {max}".format(**section["features_per_persona"])),
        ("Hamming distance between personas (min / mean; configured min)",
         f"{nearest} / {distance['mean']}; {distance['configured_min']}"),
        ("largest gap of a value's share to its target", f"{gap['gap']} ({gap['dimension']})" if gap else "no targets"),
        ("queries per persona (min / mean / max)", "{min} / {mean} / {max}".format(**per_persona)),
        ("reused queries (assignments)", section["reused_assignments"]),
        ("query pool: rows, kept, exact / near duplicates dropped",
         f"{pool.get('rows', '-')}, {pool.get('kept', '-')}, {pool.get('exact_duplicates', '-')} / "
         f"{pool.get('near_duplicates', '-')}" if pool else "-"),
        ("system prompts by source", ", ".join(f"{k} {v}" for k, v in section["system_prompts"]["sources"].items())),
        ("formulation fallback rate", section["formulation_fallback_rate"]),
    ]
    if "matched_assignments" in section:
        rows.append(("assignments matched to the persona / not", f"{section['matched_assignments']} / "
                                                                 f"{section['unmatched_assignments']}"))
    return rows
