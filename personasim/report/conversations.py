"""The conversations a report shows: a deterministic sample of a dataset's interactions, each with
its split, flags and user turns as clean-to-noisy word differences.

A page with every conversation of a 10k dataset would weigh tens of megabytes; the report holds at
most `limit` of them, the same ones on every build (lowest interaction ids, which are hashes, so
the sample is spread over personas and runs), and the browser pages through those.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from personasim.dataset.flags import flags
from personasim.dataset.judging_stats import interaction_scores
from personasim.dataset.store import Dataset

_TOKEN = re.compile(r"\s+|\S+")  # words and the spaces between them, so the pieces join back exactly
_COLUMNS = ["interaction_id", "persona_id", "persona_features", "original_query", "initial_query",
            "style_transferred", "style_transfer_fallback", "num_turns", "termination_reason", "assistant_model",
            "noise_layers", "noise_fallbacks", "truncated_turns", "violations"]
_MESSAGE_COLUMNS = ["interaction_id", "position", "role", "content", "clean_text", "was_noised", "noise_layer",
                    "noise_strategies", "noise_fallback", "model", "truncated"]


def word_diff(clean: str, noisy: str) -> list[list[str]]:
    """`clean` into `noisy` as runs of ["=", kept], ["-", removed], ["+", added] text."""
    a, b = _TOKEN.findall(clean), _TOKEN.findall(noisy)
    runs: list[list[str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        pieces = [("=", a[i1:i2])] if tag == "equal" else [("-", a[i1:i2]), ("+", b[j1:j2])]
        for op, words in pieces:
            if words:
                runs.append([op, "".join(words)])
    return runs


def _message(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m["role"], "text": m["content"]}
    if m["role"] == "assistant":
        out.update(model=m["model"], truncated=bool(m["truncated"]))
    elif m["was_noised"]:
        out.update(diff=word_diff(m["clean_text"] or "", m["content"]), layer=m["noise_layer"],
                   strategies=list(m["noise_strategies"] or []))
    elif m["noise_fallback"]:
        out["fallback"] = m["noise_fallback"]
    return out


def sample_conversations(dataset: Dataset, limit: int) -> tuple[list[dict[str, Any]], int]:
    """At most `limit` conversations shaped for the browser, and how many the dataset holds."""
    table = dataset.table("interactions", _COLUMNS)
    total = table.num_rows
    chosen = pa.array(sorted(table.column("interaction_id").to_pylist())[:limit], pa.string())
    rows = table.filter(pc.is_in(table.column("interaction_id"), chosen)).to_pylist()
    read: dict[str, list[dict[str, Any]]] = {}  # the chosen conversations' messages, a batch at a time
    for batch in dataset.batches("messages", _MESSAGE_COLUMNS, where=pc.field("interaction_id").isin(chosen)):
        for m in batch.to_pylist():
            read.setdefault(m["interaction_id"], []).append(m)
    by_interaction = {ix: [_message(m) for m in sorted(ms, key=lambda m: m["position"])] for ix, ms in read.items()}
    training = dataset.table("training", ["interaction_id", "split"]).to_pylist()
    split = {t["interaction_id"]: t["split"] for t in training}
    scores = interaction_scores(dataset)
    conversations = [{
        "id": r["interaction_id"], "persona": r["persona_id"], "features": dict(r["persona_features"]),
        "split": split.get(r["interaction_id"], "-"), "model": r["assistant_model"], "turns": r["num_turns"],
        "termination": r["termination_reason"], "layers": sorted(set(r["noise_layers"] or [])),
        "flags": flags(r), "original_query": r["original_query"],
        "rewritten": r["initial_query"] if r["style_transferred"] else None,
        "style_fallback": r["style_transfer_fallback"], "violations": r["violations"] or [],
        "messages": by_interaction.get(r["interaction_id"], []),
        "scores": {axis: round(value, 2) for axis, value in scores.get(r["interaction_id"], {}).items()},
    } for r in sorted(rows, key=lambda r: r["interaction_id"])]
    return conversations, total
