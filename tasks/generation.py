"""Per-pair tasks: style transfer, noise on the initial query, the turn loop, storage."""

from __future__ import annotations

import dataclasses

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from personasim.distractor import NoiseResult
from personasim.errors import LLMCallError
from personasim.interaction_generator import Interaction, PairPlan
from personasim.llm.usage import usage_scope
from personasim.pairs import Pair
from tasks.runtime import RunKey, runtime_for


def retry_transient(task, task_run, state) -> bool:
    """Retry what an endpoint may do better next time; a bug or bad data fails at once."""
    return isinstance(state.data, LLMCallError)


# Per-call retries (tenacity) absorb short blips; these task retries absorb longer outages.
PAIR_TASK = dict(retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=2), retry_jitter_factor=0.5,
                 retry_condition_fn=retry_transient, cache_policy=NO_CACHE, persist_result=False)


@task(name="style-transfer", **PAIR_TASK)
def style_transfer_task(key: RunKey, pair: Pair) -> PairPlan:
    return runtime_for(key).generator.plan(pair)


@task(name="noise-initial-query", **PAIR_TASK)
def noise_initial_task(key: RunKey, plan: PairPlan) -> tuple[PairPlan, NoiseResult]:
    generator = runtime_for(key).generator
    with usage_scope(plan.interaction_id) as records:
        noise = generator.noise_turn(plan.interaction_id, 1, plan.initial_query)
    return dataclasses.replace(plan, usage=plan.usage + tuple(records)), noise


@task(name="turn-loop", **PAIR_TASK)
def turn_loop_task(key: RunKey, planned: tuple[PairPlan, NoiseResult]) -> Interaction:
    plan, noise = planned
    return runtime_for(key).generator.converse(plan, noise)


@task(name="store-interaction", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE, persist_result=False)
def store_task(key: RunKey, interaction: Interaction) -> str:
    """Durable the moment it is done: a crash after this loses nothing of this pair."""
    return runtime_for(key).storage.save(interaction)
