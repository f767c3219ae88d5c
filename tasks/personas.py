"""The persona tasks, before the pairs: plan the run's personas and queries (sample, assign: no
call), formulate the system prompts a batch of personas still needs, write personas to the
dataset. Each is a thin wrapper around the library (personasim.personas, the engine)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from personasim.dataset.persona_store import PersonaStore
from personasim.dataset.persona_tables import stored_assignments, stored_personas
from personasim.dataset.rows import assignment_row, persona_row, usage_rows
from personasim.engine.formulation import formulate
from personasim.personas import Persona
from personasim.personas.persona import Formulated
from personasim.personas.plan import PersonaPlan, plan_personas
from personasim.personas.source import PersonaSource
from personasim.run_handle import RunHandle
from personasim.tasks.prefect_compat import Sealed


@task(name="plan-personas", cache_policy=NO_CACHE, persist_result=False)
def plan_personas_task(run: RunHandle, source: Sealed[PersonaSource], new_variant: bool, run_date: str
                       ) -> Sealed[PersonaPlan]:
    """Sample (or read) the personas and assign their queries, keeping what the dataset holds; the
    new assignments are committed at once, so a rerun gives every persona the same queries."""
    with run.in_use():
        run.open_dataset(new_variant)
        dataset, config = run.dataset, run.config
        stored, in_table = stored_personas(dataset)
        plan = plan_personas(source.value, config.seed, stored, in_table, stored_assignments(dataset),
                             config.formulation.enabled)
        if plan.new_assignments:
            dataset.write_wave(f"{run.run_id}-assignments", run_date, config.fingerprint(),
                               {"assignments": [assignment_row(a, run.run_id) for a in plan.new_assignments]})
        dataset.write_json("personas.json", plan.summary(source.value))
        return Sealed(plan)


@task(name="formulate-prompts", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
def formulate_task(run: RunHandle, personas: Sealed[list[Persona]]) -> Sealed[list[Formulated]]:
    """One system prompt per persona (the formulator), each stored the moment it is written; on a
    retry, those the first try stored are read back, not paid for again."""
    with run.in_use():
        store = PersonaStore(run.dataset)
        done = store.ids()
        recovered: list[Formulated] = [store.load(p.persona_id) for p in personas.value if p.persona_id in done]
        todo = [p for p in personas.value if p.persona_id not in done]
        try:
            return Sealed(recovered + formulate(run.engine, todo, store))
        finally:
            run.flush_spend()


@task(name="write-personas", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
def write_personas_task(run: RunHandle, wave_id: str, run_date: str, personas: Sealed[list[Persona]]) -> int:
    """Personas with their system prompts (and the calls that wrote them) into the dataset, committed."""
    rows = {"personas": [persona_row(p, run.run_id) for p in personas.value],
            "token_usage": [row for p in personas.value for row in usage_rows(p, run.run_id)]}
    with run.in_use():
        run.dataset.write_wave(wave_id, run_date, run.config.fingerprint(), rows)
    return len(personas.value)
