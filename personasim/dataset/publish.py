"""What a dataset shows once its rows are written: compaction, the current failures, stats.json,
the chat-format exports per split and the HTML report (the end of every run, and of `judge`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow.compute as pc

from personasim.config import PersonasimConfig
from personasim.dataset.rows import training_sample
from personasim.dataset.stats import compute_statistics
from personasim.dataset.store import Dataset
from personasim.report import write_report
from personasim.training import SPLITS, SampleCounts, TrainingSample, jsonl_lines, jsonl_name


def publish(dataset: Dataset, config: PersonasimConfig) -> tuple[dict[str, Any], str]:
    """The statistics, and where the report is."""
    dataset.compact()  # the run's waves into a few files per partition
    dataset.write_current_failures()
    stats = compute_statistics(dataset, config.pricing, config.spec.distractor)
    dataset.write_json("stats.json", stats)
    counts = SampleCounts()
    for split in SPLITS:  # each split's file written as its rows are read
        dataset.write_file(f"exports/{jsonl_name(split, chat_format=True)}",
                           jsonl_lines(split_samples(dataset, split, counts), chat_format=True))
    dataset.write_json("exports/statistics.json", counts.summary())
    report, _ = write_report(dataset)
    return stats, report


def split_samples(dataset: Dataset, split: str, counts: SampleCounts | None = None) -> Iterator[TrainingSample]:
    """A split's training samples, read a batch at a time (the partition filter reads only its
    files) and counted on the way for the export's statistics."""
    for batch in dataset.batches("training", where=pc.field("split") == split, batch_rows=512):  # a row: a conversation
        for row in batch.to_pylist():
            sample = training_sample(row)
            if counts is not None:
                counts.add(sample)
            yield sample
