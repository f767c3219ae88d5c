"""Lexical realism of the simulated users, no model needed: how LLM-played users differ from real
ones (front-loading everything into the first message, constant politeness, uniform lengths, a
small vocabulary, never asking). Per conversation, on the user turns as the persona wrote them
(before noise), then per dataset, per assistant model and per persona dimension value.

Real users are said to sit near 1 on the first-turn ratio, well below 0.3 on politeness and above
0.5 on length variation (Zhou et al. 2026, "Mind the Sim2Real Gap in User Simulation"; NeMo User
Sim's diagnostics D1-D4); MATTR is the moving-average type/token ratio, window 50.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from personasim.dataset.store import Dataset

METRICS = ("first_turn_ratio", "politeness_share", "length_cv", "frustration_share", "mattr", "question_share")
WINDOW = 50
_POLITE = re.compile(r"\b(?:thank you|thanks|please|appreciate|sorry|no problem|of course|sure thing|happy to|"
                     r"glad to|certainly|absolutely)\b", re.I)
_FRUSTRATED = re.compile(r"\b(?:frustrat\w*|annoy\w*|unacceptable|ridiculous|already (?:told|said)|waste of time|"
                         r"terrible|awful|this is taking|can you just|still (?:not|doesn't|isn't|don't)|again\?)", re.I)
_ASKS = re.compile(r"\?|^\W*(?:how|what|why|which|when|where|who|can|could|would|will|should|is|are|do|does|did)\b",
                   re.I)
MAX_VALUES = 16  # a persona dimension with more values than this is not split by value


def words(text: str) -> int:
    return len(text.split())


def mattr(tokens: Sequence[str], window: int = WINDOW) -> float | None:
    """The moving-average type/token ratio: the mean share of distinct tokens over every window of
    `window` tokens (the plain type/token ratio for fewer)."""
    if not tokens:
        return None
    if len(tokens) <= window:
        return len(set(tokens)) / len(tokens)
    counts: dict[str, int] = defaultdict(int)
    for token in tokens[:window]:
        counts[token] += 1
    total = len(counts)
    for start in range(1, len(tokens) - window + 1):
        gone, new = tokens[start - 1], tokens[start + window - 1]
        counts[gone] -= 1
        if not counts[gone]:
            del counts[gone]
        counts[new] += 1
        total += len(counts)
    return total / ((len(tokens) - window + 1) * window)


def diagnostics(turns: Sequence[str]) -> dict[str, float | None]:
    """The realism figures of one conversation's user turns (None where a figure needs more turns)."""
    n = len(turns)
    lengths = [words(t) for t in turns]
    later = statistics.fmean(lengths[1:]) if n >= 2 else 0.0
    mean = statistics.fmean(lengths) if lengths else 0.0
    figures: dict[str, float | None] = {
        "first_turn_ratio": lengths[0] / later if n >= 2 and later > 0 else None,
        "politeness_share": sum(1 for t in turns if _POLITE.search(t)) / n if n else None,
        "length_cv": statistics.pstdev(lengths) / mean if n >= 2 and mean > 0 else None,
        "frustration_share": sum(1 for t in turns if _FRUSTRATED.search(t)) / n if n else None,
        "mattr": mattr([w.lower() for t in turns for w in t.split()]),
        "question_share": sum(1 for t in turns if _ASKS.search(t)) / n if n else None,
    }
    return {k: None if v is None else round(v, 4) for k, v in figures.items()}


def means(rows: Iterable[Mapping[str, float | None]]) -> dict[str, float | None]:
    """Each figure's mean over the conversations that have it."""
    values: dict[str, list[float]] = {m: [] for m in METRICS}
    for row in rows:
        for metric in METRICS:
            if row.get(metric) is not None:
                values[metric].append(float(row[metric]))  # type: ignore[arg-type]
    return {m: round(statistics.fmean(v), 4) if v else None for m, v in values.items()}


def realism(dataset: Dataset) -> dict[str, Any]:
    """The dataset's realism section: per-conversation figures aggregated overall, by assistant
    model, by persona dimension value, and where users stopped."""
    turns: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for batch in dataset.batches("messages", ["interaction_id", "position", "role", "content", "clean_text"]):
        for row in batch.to_pylist():
            if row["role"] == "user":
                turns[row["interaction_id"]].append((row["position"], row["clean_text"] or row["content"]))
    per_conversation: dict[str, dict[str, float | None]] = {
        ix: diagnostics([text for _, text in sorted(messages)]) for ix, messages in turns.items()}
    ix = dataset.table("interactions", ["interaction_id", "assistant_model", "persona_features", "num_turns",
                                        "termination_reason"]).to_pylist()
    by_model: dict[str, list[dict[str, float | None]]] = defaultdict(list)
    by_value: dict[str, dict[str, list[dict[str, float | None]]]] = defaultdict(lambda: defaultdict(list))
    stops: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row in ix:
        figures = per_conversation.get(row["interaction_id"])
        stops[row["termination_reason"] or "-"][row["num_turns"]] += 1
        if figures is None:
            continue
        by_model[row["assistant_model"] or "-"].append(figures)
        for name, value in dict(row["persona_features"]).items():
            by_value[name][value].append(figures)
    return {
        "conversations": len(per_conversation), "overall": means(per_conversation.values()),
        "by_assistant_model": {m: means(rows) for m, rows in sorted(by_model.items())},
        "by_persona_value": {dim: {v: means(rows) for v, rows in sorted(values.items())}
                             for dim, values in sorted(by_value.items()) if len(values) <= MAX_VALUES},
        "stop_turns": {reason: dict(sorted(counts.items())) for reason, counts in sorted(stops.items())},
    }
