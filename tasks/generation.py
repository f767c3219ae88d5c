"""Pair tasks, each a thin wrapper around one engine call.

A task takes a batch of pairs: a Prefect task run costs tens of milliseconds of CPU between
client and API, which at thousands of pairs would outweigh the work. The engine retries pairs
itself (one retry policy, see `RetryPolicy`): a failed pair comes back as a `Failure`, never as
a task failure, so Prefect never retries a permanent error. Prefect's retry is for the task as a
whole (a storage error, a lost worker); on a retry, pairs stored by the first try are not redone.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run

from personasim.engine import Triage
from personasim.records import Interaction, Outcome, Pair
from personasim.run_handle import RunHandle
from personasim.tasks.prefect_compat import Sealed


@task(name="prepare-dataset", cache_policy=NO_CACHE, persist_result=False)
def prepare_task(run: RunHandle, pairs: Sealed[list[Pair]], new_variant: bool = False) -> Sealed[Triage]:
    """Refuse another seed or spec unless asked for as a new variant; drop what a crashed wave left;
    sort the pairs into skip (in the dataset), recover (stored), generate."""
    with run.in_use():
        return Sealed(run.prepare(pairs.value, new_variant))


@task(name="recover-stored", cache_policy=NO_CACHE, persist_result=False)
def recover_task(run: RunHandle, interaction_ids: Sealed[list[str]]) -> Sealed[list[Interaction]]:
    """Interactions stored by an earlier run but never written to the dataset: no LLM call."""
    with run.in_use():
        return Sealed(run.engine.recover(interaction_ids.value))


@task(name="generate-pairs", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
def generate_task(run: RunHandle, pairs: Sealed[list[Pair]]) -> Sealed[list[Outcome]]:
    """Style transfer, noise, the turn loop and storage for each pair of the batch, side by side."""
    with run.in_use():
        engine = run.engine
        todo = pairs.value
        recovered: list[Outcome] = []
        if task_run.run_count > 1:  # a retry: what the first try stored is kept
            triage = engine.triage(todo, in_dataset=set())
            recovered, todo = list(engine.recover(triage.recover)), triage.todo
        try:
            return Sealed(recovered + engine.run(todo))
        finally:
            run.flush_spend()
