"""A run's pairs through the batch APIs of its endpoints (`mode: batch`), in the flow's process.

The rounds run here, not as tasks: a batch can take a day, and the flow commits a wave as pairs
end, whatever round they end in. The journal lives beside the dataset (a local root): a stopped
or killed run, started again on the same dataset, picks its batches up.
"""

from __future__ import annotations

from prefect import get_run_logger

from personasim.batch.journal import Journal, journal_path
from personasim.batch.runner import BatchRun
from personasim.flows.waves import Waves
from personasim.interrupt import StopRequest
from personasim.records import Pair
from personasim.run_handle import RunHandle


def generate_in_batches(run: RunHandle, todo: list[Pair], mode: str, waves: Waves, stop: StopRequest) -> None:
    """Every pair of `todo` to its end through the batch APIs, its outcome into a wave as it ends."""
    logger = get_run_logger()
    journal = Journal(journal_path(run.dataset, "dataset_root"))
    batch = BatchRun(run.engine, journal, run.config, mode, stopped=lambda: stop.requested, label=run.run_id)
    waves.progress.note = batch.note
    try:
        waiting = batch.run(todo, waves.add_one)
    finally:
        waves.progress.note = None
        waves.flush()
        run.flush_spend()
        journal.close()
    if waiting:
        logger.warning("run %s: %d pairs wait on batches in flight (%s); run again on this dataset to pick them up",
                       run.run_id, waiting, batch.note())
