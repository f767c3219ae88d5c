"""Dataset tasks: prepare the root, write a committed wave, publish statistics and exports."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from personasim.dataset import Dataset, compute_statistics
from personasim.dataset.rows import (
    failure_row,
    interaction_row,
    message_rows,
    training_row,
    training_sample,
    usage_row,
)
from personasim.interaction_generator import Interaction, PairFailure
from personasim.llm.usage import UsageRecord, usage_by
from personasim.training import SPLITS, interaction_to_training_sample, samples_jsonl, statistics_json
from tasks.runtime import RunKey, using

DATASET_TASK = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="prepare-dataset", **DATASET_TASK)
def prepare_dataset_task(key: RunKey) -> tuple[set[str], set[str]]:
    """Drop what a crashed wave left; return (ids in the dataset, ids stored but not yet in it)."""
    with using(key) as runtime:
        runtime.dataset.prepare()
        in_dataset = runtime.dataset.interaction_ids()
        return in_dataset, set(runtime.storage.ids()) - in_dataset


@task(name="write-wave", retries=2, retry_delay_seconds=2, **DATASET_TASK)
def write_wave_task(key: RunKey, wave_id: str, run_date: str, interactions: list[Interaction],
                    failures: list[PairFailure], usage: list[UsageRecord]) -> dict[str, dict[str, int]]:
    """All tables for one wave (its pairs' LLM calls included), then its commit marker.

    Returns the calls and tokens written, by model, for the run's own summary.
    """
    splits = key.config.splits
    rows = {
        "interactions": [interaction_row(ix, key.run_id) for ix in interactions],
        "messages": [row for ix in interactions for row in message_rows(ix, key.run_id)],
        "training": [training_row(interaction_to_training_sample(ix, splits), key.run_id) for ix in interactions],
        "failures": [failure_row(f, key.run_id) for f in failures],
        "token_usage": [usage_row(r, key.run_id) for r in usage],
    }
    with using(key) as runtime:
        runtime.dataset.write_wave(wave_id, run_date, rows)
    return usage_by(usage, lambda r: r.model)


@task(name="publish-statistics", **DATASET_TASK)
def publish_statistics_task(key: RunKey) -> dict:
    """stats.json for the whole dataset, and chat-format JSONL exports per split."""
    dataset = Dataset(key.dataset_root)
    stats = compute_statistics(dataset, key.config.pricing)
    dataset.write_json("stats.json", stats)
    samples = [training_sample(row) for row in dataset.table("training").to_pylist()]
    for split in SPLITS:
        name, payload = samples_jsonl(samples, split=split, chat_format=True)
        dataset.write_file(f"exports/{name}", payload)
    dataset.write_file("exports/statistics.json", statistics_json(samples))
    return stats
