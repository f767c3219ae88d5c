"""The judged side of a dataset's statistics: the judges' score distributions per axis (overall, by
judge and by assistant model), their agreement (Krippendorff's alpha, ordinal, with two judges or
more), the worst conversations per axis, and what the gate said of the users' drafts."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from personasim.dataset.figures import Row
from personasim.dataset.store import Dataset

WORST = 5  # conversations listed per axis, lowest scores first


def interaction_scores(dataset: Dataset) -> dict[str, dict[str, float]]:
    """Each conversation's score per axis: the mean over its judges."""
    scores: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row in dataset.table("scores", ["interaction_id", "axis", "score"]).to_pylist():
        scores[row["interaction_id"]][row["axis"]].append(row["score"])
    return {ix: {axis: statistics.fmean(values) for axis, values in axes.items()} for ix, axes in scores.items()}


def judging(dataset: Dataset) -> dict[str, Any] | None:
    """None when no conversation has a score."""
    rows = dataset.table("scores", ["interaction_id", "axis", "score", "reason", "judge_model"]).to_pylist()
    if not rows:
        return None
    unique = {(r["interaction_id"], r["axis"], r["judge_model"]): r for r in rows}.values()
    models = {r["interaction_id"]: r["assistant_model"]
              for r in dataset.table("interactions", ["interaction_id", "assistant_model"]).to_pylist()}
    by_axis: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in unique:
        by_axis[row["axis"]].append(row)
    judges = sorted({r["judge_model"] for r in unique})
    axes = {}
    for axis, scored in sorted(by_axis.items()):
        values = [r["score"] for r in scored]
        axes[axis] = {
            "n": len(values), "mean": round(statistics.fmean(values), 3),
            "distribution": {str(k): Counter(values).get(k, 0) for k in range(1, 6)},
            "by_judge": _means(scored, lambda r: r["judge_model"]),
            "by_assistant_model": _means(scored, lambda r: models.get(r["interaction_id"]) or "-"),
            "worst": [{"interaction_id": r["interaction_id"], "score": r["score"], "reason": r["reason"],
                       "judge_model": r["judge_model"]}
                      for r in sorted(scored, key=lambda r: (r["score"], r["interaction_id"]))[:WORST]],
        }
    return {"scored": len({r["interaction_id"] for r in unique}), "judges": judges, "axes": axes,
            **({"agreement": agreement(unique, judges)} if len(judges) >= 2 else {})}


def _means(rows: list[dict[str, Any]], key: Any) -> dict[str, float]:
    groups: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row["score"])
    return {k: round(statistics.fmean(v), 3) for k, v in sorted(groups.items())}


def agreement(rows: Any, judges: list[str]) -> dict[str, float | None]:
    """Krippendorff's alpha (ordinal, on the 1-5 scale) per axis between the judges: units are
    conversations, raters are judges; None where it is undefined (no variation)."""
    import krippendorff
    import numpy as np

    by_axis: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        by_axis[row["axis"]][row["interaction_id"]][row["judge_model"]] = row["score"]
    out: dict[str, float | None] = {}
    for axis, units in sorted(by_axis.items()):
        data = np.array([[units[u].get(j, np.nan) for u in sorted(units)] for j in judges], dtype=float)
        try:
            alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                              value_domain=[1, 2, 3, 4, 5]))
        except (ValueError, ZeroDivisionError):
            alpha = float("nan")
        out[axis] = None if alpha != alpha else round(alpha, 4)  # NaN: no variation to agree on
    return out


def gate(dataset: Dataset) -> dict[str, Any]:
    """What the gate said of the users' drafts: outcomes per stage, the reasons of the failures,
    how many turns needed more than one draft."""
    stages: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    redrafted = turns = 0
    for batch in dataset.batches("messages", ["role", "verdicts"]):
        for row in batch.to_pylist():
            verdicts = row["verdicts"] or []
            if row["role"] != "user" or not verdicts:
                continue
            turns += 1
            redrafted += max(v["attempt"] for v in verdicts) > 1
            for verdict in verdicts:
                stages[verdict["stage"]][verdict["outcome"]] += 1
                if verdict["outcome"] != "pass":  # a rule's name, or the judge's outcome (its reasons are prose)
                    why = verdict["reason"].split(":")[0] if verdict["stage"] == "rules" else verdict["outcome"]
                    reasons[f"{verdict['stage']}: {why}"] += 1
    return {"gated_turns": turns, "redrafted_turns": redrafted,
            "drafts": {stage: dict(sorted(counts.items())) for stage, counts in sorted(stages.items())},
            "failure_reasons": dict(reasons.most_common(10))}


def judging_rows(section: Mapping[str, Any] | None) -> list[Row]:
    """The scores as (figure, value) rows: one per axis, mean and distribution."""
    if not section:
        return []
    rows = [("scored conversations (judges)", f"{section['scored']} ({', '.join(section['judges'])})")]
    for axis, figures in section["axes"].items():
        spread = " ".join(f"{k}:{v}" for k, v in figures["distribution"].items())
        alpha = (section.get("agreement") or {}).get(axis)
        rows.append((f"{axis} (mean; 1-5 counts{'; alpha' if 'agreement' in section else ''})",
                     f"{figures['mean']}; {spread}" + (f"; {alpha}" if "agreement" in section else "")))
    return rows
