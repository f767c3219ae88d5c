"""Per-pair work as Prefect tasks: style transfer, noise on the initial query, the turn loop, storage.

Each task takes a batch of pairs (`pairs_per_task`, 1 for a task run per pair) and runs them at
once in the run's pair pool: a Prefect task run costs tens of milliseconds of CPU between client
and API, which at thousands of pairs would outweigh the work. A pair whose LLM calls fail makes
the task fail, so Prefect retries it with backoff; pairs that succeeded on an earlier try are
not redone. On the last try the failures are returned, and the flow records them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff

from personasim.distractor import NoiseResult
from personasim.errors import LLMCallError
from personasim.interaction_generator import Interaction, PairFailure, PairPlan
from personasim.llm.usage import UsageRecord, usage_scope
from personasim.pairs import Pair
from tasks.runtime import RunKey, Runtime, Sealed, StageProgress, using

RETRIES = 2
T = TypeVar("T")


def retry_transient(task, task_run, state) -> bool:
    """Retry what an endpoint may do better next time; a bug or bad data fails at once."""
    return isinstance(state.data, LLMCallError)


# Per-call retries (tenacity) absorb short blips; these task retries absorb longer outages.
PAIR_TASK = dict(retries=RETRIES, retry_delay_seconds=exponential_backoff(backoff_factor=2), retry_jitter_factor=0.5,
                 retry_condition_fn=retry_transient, cache_policy=NO_CACHE, persist_result=False)

Noised = tuple[PairPlan, NoiseResult]


def interaction_id_of(item: Any, runtime: Runtime) -> str:
    if isinstance(item, Pair):
        return runtime.generator.interaction_id_for(item)
    if isinstance(item, tuple):
        item = item[0]
    return item.interaction_id


def _pair_of(item: Any) -> Pair:
    if isinstance(item, tuple):
        item = item[0]
    return item if isinstance(item, Pair) else item.pair


def failure_for(item: Any, runtime: Runtime, stage: str, reason: str, attempts: int) -> PairFailure:
    """The record of a pair that did not get past `stage`."""
    if isinstance(item, PairFailure):
        return item
    pair = _pair_of(item)
    return PairFailure(interaction_id_of(item, runtime), pair.persona_id, pair.query_id, pair.original_query,
                       pair.source, reason, attempts, stage)


class Batch(Sealed):
    """Pairs at some stage (pairs, plans, interactions, failures), and every LLM call made for them
    at that stage (failed tries too).

    The calls travel with the results because a worker may be another process: the flow writes
    them with the wave, so what was paid for is counted once whichever runner ran the task.
    """

    __slots__ = ("items", "usage")

    def __init__(self, items: list[Any], usage: list[UsageRecord] | None = None) -> None:
        self.items, self.usage = items, usage or []


def _run_batch(key: RunKey, stage: str, items: list[Any], step: Callable[[Runtime, Any], T]) -> Batch:
    """`step` over a batch in the pair pool; upstream failures pass through untouched.

    A pair that succeeded on an earlier try of this task run is not redone (Prefect retries a
    task run in the same process).
    """
    with using(key) as runtime:
        ids = [None if isinstance(item, PairFailure) else interaction_id_of(item, runtime) for item in items]

        def one(item: Any, interaction_id: str | None) -> T | PairFailure:
            if interaction_id is None:
                return item
            progress = runtime.progress.setdefault((stage, interaction_id), StageProgress())
            if progress.done:
                return progress.result
            with usage_scope(interaction_id) as records:
                try:
                    progress.result, progress.done = step(runtime, item), True
                except LLMCallError as exc:
                    progress.result = failure_for(item, runtime, stage, str(exc), task_run.run_count)
                finally:
                    progress.usage.extend(records)
            return progress.result

        results = list(runtime.pool.map(one, items, ids))
        failed = [r for r in results if isinstance(r, PairFailure) and r.stage == stage]
        if failed and task_run.run_count <= RETRIES:
            raise LLMCallError(f"{len(failed)} of {len(items)} pairs failed at {stage} (retrying them): "
                               f"{failed[0].reason}")
        done = [runtime.progress.pop((stage, i), None) for i in ids if i is not None]
        return Batch(results, [record for progress in done if progress for record in progress.usage])


def _plan(runtime: Runtime, pair: Pair) -> PairPlan:
    return runtime.generator.plan(pair)


def _noise_initial(runtime: Runtime, plan: PairPlan) -> Noised:
    with usage_scope(plan.interaction_id) as records:
        noise = runtime.generator.noise_turn(plan.interaction_id, 1, plan.initial_query)
    return dataclasses.replace(plan, usage=plan.usage + tuple(records)), noise


def _converse(runtime: Runtime, planned: Noised) -> Interaction:
    plan, noise = planned
    return runtime.generator.converse(plan, noise)


def _store(runtime: Runtime, interaction: Interaction) -> Interaction:
    runtime.storage.save(interaction)
    return interaction


@task(name="style-transfer", **PAIR_TASK)
def style_transfer_task(key: RunKey, pairs: Batch) -> Batch:
    """The seed query in the persona's voice, and the conversation's target length."""
    return _run_batch(key, "style_transfer", pairs.items, _plan)


@task(name="noise-initial-query", **PAIR_TASK)
def noise_initial_task(key: RunKey, plans: Batch) -> Batch:
    """The distractor on the first user turn (follow-ups are noised inside the turn loop)."""
    return _run_batch(key, "noise_initial_query", plans.items, _noise_initial)


@task(name="turn-loop", **PAIR_TASK)
def turn_loop_task(key: RunKey, noised: Batch) -> Batch:
    """The conversation: assistant answers, the persona follows up (noised as written) or stops."""
    return _run_batch(key, "turn_loop", noised.items, _converse)


@task(name="store-interaction", retries=RETRIES, retry_delay_seconds=1, cache_policy=NO_CACHE, persist_result=False)
def store_task(key: RunKey, interactions: Batch) -> Batch:
    """Durable the moment it is done: a crash after this loses nothing of these pairs."""
    return _run_batch(key, "store", interactions.items, _store)
