"""Dataset tasks: write a committed wave, publish statistics and exports."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from personasim.dataset.publish import publish
from personasim.dataset.rows import (
    failure_row,
    interaction_row,
    message_rows,
    score_rows,
    training_row,
    usage_rows,
)
from personasim.records import Failure, Interaction, Outcome
from personasim.run_handle import RunHandle
from personasim.tasks.prefect_compat import Sealed
from personasim.training import interaction_to_training_sample


@task(name="write-wave", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
def write_wave_task(run: RunHandle, wave_id: str, run_date: str, outcomes: Sealed[list[Outcome]]) -> int:
    """All tables for one wave (the calls each pair paid for included), then its commit marker.

    Returns the number of rows written to `interactions`.
    """
    interactions = [o for o in outcomes.value if isinstance(o, Interaction)]
    failures = [o for o in outcomes.value if isinstance(o, Failure)]
    splits, run_id = run.config.splits, run.run_id
    rows = {
        "interactions": [interaction_row(ix, run_id) for ix in interactions],
        "messages": [row for ix in interactions for row in message_rows(ix, run_id)],
        "training": [training_row(interaction_to_training_sample(ix, splits), run_id) for ix in interactions],
        "failure_log": [failure_row(f, run_id) for f in failures],
        "token_usage": [row for o in outcomes.value for row in usage_rows(o, run_id)],
        "scores": [row for ix in interactions for row in score_rows(ix.interaction_id, ix.scores, run_id)],
    }
    with run.in_use():
        run.dataset.write_wave(wave_id, run_date, run.config.fingerprint(), rows)
    return len(interactions)


@task(name="publish-statistics", cache_policy=NO_CACHE, persist_result=False)
def publish_statistics_task(run: RunHandle) -> tuple[dict[str, Any], str]:
    """Compaction, the current failures, stats.json for the whole dataset, chat-format JSONL exports
    per split and the HTML report; the statistics and where the report is."""
    return publish(run.dataset, run.config)
