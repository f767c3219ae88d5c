"""Chat-format JSONL per split (the fine-tuning format: a system prompt when the assistant had one,
then the conversation as sent), for the conversations a selection keeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from personasim.dataset.publish import split_samples
from personasim.dataset.store import Dataset
from personasim.exports.selection import Selection
from personasim.fsio import atomic_write_bytes
from personasim.training import SPLITS, SampleCounts, TrainingSample, jsonl_lines, jsonl_name


def export_chat(dataset: Dataset, to: str | Path, selection: Selection | None = None) -> list[Path]:
    """`<split>.chat.jsonl` for each split and `statistics.json` (with what was left out and why)."""
    kept, filtered = (selection or Selection()).keep(dataset)
    out = Path(to)
    out.mkdir(parents=True, exist_ok=True)
    counts = SampleCounts()

    def chosen(split: str) -> Iterator[TrainingSample]:
        for sample in split_samples(dataset, split):
            if kept is None or sample.metadata.get("interaction_id") in kept:
                counts.add(sample)
                yield sample

    written = []
    for split in SPLITS:
        path = out / jsonl_name(split, chat_format=True)
        atomic_write_bytes(path, b"".join(jsonl_lines(chosen(split), chat_format=True)))
        written.append(path)
    summary = {**counts.summary(), **({"filtering": filtered} if filtered else {})}
    atomic_write_bytes(out / "statistics.json", json.dumps(summary, indent=2).encode("utf-8"))
    return [*written, out / "statistics.json"]
