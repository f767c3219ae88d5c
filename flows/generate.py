"""The Prefect flows: generate interactions for every persona–query pair into the datasets.

The flow only composes tasks: plan the personas and their queries (for pairs made from a persona
bank and a query pool), prepare (triage), write the system prompts the personas to generate
still need, recover what was stored, generate batches of pairs (one engine call each), write
committed waves as batches come back, publish statistics.
"""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import update_progress_artifact
from prefect.context import FlowRunContext
from prefect.states import Failed, State
from prefect.task_runners import TaskRunner

from personasim import head_start
from personasim.dataset import quality
from personasim.errors import PersonasimError
from personasim.flows.batch import generate_in_batches
from personasim.flows.dataset_turn import dataset_turn
from personasim.flows.outcome import final_state, progress_artifact, publish_artifacts
from personasim.flows.parameters import (
    Backend,
    ConfigPath,
    DatasetRoot,
    InputPath,
    Limit,
    LocalModel,
    MaxConcurrency,
    MaxCost,
    MaxFailureRatio,
    PairsPerTask,
    PersonaBankPath,
    Personas,
    QueriesPerPersona,
    QueryPool,
    RunMode,
    RunName,
    RunnerAddress,
    RunParameters,
    Seed,
    TaskRunnerChoice,
    WaveSize,
    Workers,
)
from personasim.flows.runners import build_task_runner, profiling_workers
from personasim.flows.waves import Tally, Waves
from personasim.head_start import OpenRun
from personasim.inputs import load_input
from personasim.interrupt import GRACE_S, StopRequest, stop_on_signals
from personasim.personas.plan import PersonaPlan
from personasim.progress import RunProgress, show_progress
from personasim.records import Failure, Outcome, Pair
from personasim.run_handle import RunHandle
from personasim.tasks.datasets import publish_statistics_task, write_wave_task
from personasim.tasks.generation import generate_task, prepare_task, recover_task
from personasim.tasks.personas import formulate_task, plan_personas_task, write_personas_task
from personasim.tasks.prefect_compat import Completions, Sealed, api_for_workers, forget_result, worker_processes


def run_pipeline(params: RunParameters, runner: TaskRunner[Any], progress_id: UUID | None = None) -> dict[str, Any]:
    """The work of a run: triage, recover, generate batches (tasks on `runner`, started), write
    committed waves, publish statistics.

    A stop (Ctrl-C, SIGTERM, the budget) starts no new pair, lets pairs in flight finish for
    GRACE_S seconds, gives up the rest (they are redone by the next run) and commits what is done.
    """
    logger = get_run_logger()
    tally = Tally()
    # the command line's run, its pairs already in flight; else opened here
    opened = head_start.claim(params) or OpenRun.open(params, worker_processes(params.task_runner, runner))
    run, workers, budget, run_date = opened.run, opened.workers, opened.budget_usd, f"{opened.started:%Y-%m-%d}"
    config, run_id = run.config, run.run_id
    source = params.persona_source(config)
    plan: PersonaPlan | None = None
    try:
        with stop_on_signals(lambda: run.stop("interrupted")) as stop:
            if source is None:
                pairs = load_input(params.input_path or "", limit=params.limit)
            else:
                plan = plan_personas_task(run, Sealed(source), params.new_variant, run_date).value
                pairs = plan.pairs(params.limit)
                logger.info("run %s: %s; %d personas, %d pairs", run_id, source.describe(), len(plan.personas),
                            len(pairs))
            triage = prepare_task(run, Sealed(pairs), params.new_variant).value
            logger.info("run %s: %d pairs, %d already in the dataset, %d stored but not yet written, %d to generate",
                        run_id, len(pairs), len(triage.skipped), len(triage.recover), len(triage.todo))
            todo, unwritten = triage.todo, list[Outcome]()
            if plan is not None:
                todo, failed = _system_prompts(run, runner, plan, todo, run_date, params, stop)
                unwritten.extend(failed)
            progress = RunProgress(len(triage.todo) + len(triage.recover), config.pricing, opened.clock,
                                   live=run.engine)
            if unwritten:  # pairs whose persona's system prompt could not be written: failed, with the reason
                write_wave_task(run, f"{run_id}-formulation", run_date, Sealed(unwritten))
                progress.add(unwritten)
                tally.add(unwritten)
            if triage.recover:
                recovered: list[Outcome] = list(recover_task(run, Sealed(triage.recover)).value)
                write_wave_task(run, f"{run_id}-recovered", run_date, Sealed(recovered))
                progress.add(recovered, paid=False)
                tally.add(recovered)
                tally.recovered = len(recovered)
            size = params.batch_size(len(todo))
            quality.preload()
            waves = Waves(run, run_date, params.wave(size), progress, tally, progress_id)
            with show_progress(progress, enabled=params.show_progress):
                if params.batch_run(config):
                    generate_in_batches(run, todo, params.run_mode(config), waves, stop)
                else:
                    _generate(run, runner, todo, size, waves, stop)
            stats, report = publish_statistics_task(run)
    finally:
        opened.close()
    for line in tally.failures:
        logger.warning("failed pair %s", line)
    books = progress.books()
    stopped = "interrupted" if stop.requested else run.stopped or (
        "budget" if budget is not None and books.cost_usd >= budget else None)
    summary = {
        "run_id": run_id, "dataset_root": params.dataset_root, "task_runner": params.task_runner,
        "workers": workers, "pairs": len(pairs), "done": books.done, "failed": books.failed,
        "skipped": len(triage.skipped), "recovered": tally.recovered,
        "not_started": len(triage.todo) + len(triage.recover) - books.finished, "stopped": stopped,
        "turns": tally.turns,
        "noise_rate": round(tally.noised_turns / tally.user_turns, 4) if tally.user_turns else 0.0,
        "llm_calls": books.calls, "input_tokens": books.input_tokens, "output_tokens": books.output_tokens,
        "cost_usd": books.cost_usd, "elapsed_s": round(books.elapsed_s, 3), "failures": tally.failures,
        "statistics": stats, "report": report,
        **({"personas": plan.summary()["assignment"]} if plan is not None else {}),
    }
    logger.info("run %s: %d done, %d failed, %d skipped, %d recovered%s", run_id, books.done, books.failed,
                len(triage.skipped), tally.recovered, f"; stopped: {stopped}" if stopped else "")
    return summary


def _system_prompts(run: RunHandle, runner: TaskRunner[Any], plan: PersonaPlan, todo: list[Pair], run_date: str,
                    params: RunParameters, stop: StopRequest) -> tuple[list[Pair], list[Failure]]:
    """The system prompts the personas of `todo` still need (batches of personas as tasks, one
    formulator call each), the personas written to the dataset; `todo` with its prompts, and the
    failures of pairs whose persona's prompt could not be written."""
    needed = plan.needing_prompts(todo)
    if needed:
        get_run_logger().info("run %s: writing the system prompts of %d personas", run.run_id, len(needed))
        size = params.batch_size(len(needed))
        batches = Completions([runner.submit(formulate_task, {"run": run, "personas": Sealed(needed[i:i + size])})
                               for i in range(0, len(needed), size)])
        while batches.pending:
            for future in batches.finished(timeout=0.5):
                plan.add(future.result().value)
                forget_result(future)
            if stop.requested and stop.since() > GRACE_S:
                run.abort()
                if stop.since() > 2 * GRACE_S:
                    break
    written = plan.to_write()
    if written:
        write_personas_task(run, f"{run.run_id}-personas", run_date, Sealed(written))
    return plan.ready(todo, run.engine.interaction_id)


def _generate(run: RunHandle, runner: TaskRunner[Any], todo: list[Pair], size: int, waves: Waves,
              stop: StopRequest) -> None:
    """Batches of pairs out as tasks; outcomes back into committed waves as the batches finish."""
    batches = Completions([runner.submit(generate_task, {"run": run, "pairs": Sealed(todo[i:i + size])})
                           for i in range(0, len(todo), size)])
    while batches.pending:
        for future in batches.finished(timeout=0.5):
            outcomes = future.result().value
            forget_result(future)
            waves.add(outcomes)
        if not batches.pending:
            waves.flush()
        waves.tick()
        if stop.requested and stop.since() > GRACE_S:
            run.abort()  # pairs still in flight are given up: their batches come back at once
            if stop.since() > 2 * GRACE_S:  # workers in other processes: stop waiting for them
                break
    waves.flush()


def _task_runner(params: RunParameters) -> TaskRunner[Any]:
    """Threads for the thread runner: enough batch tasks running to keep every pair slot busy (a
    running task waits on its pairs in the engine's pool). Dask and Ray run one task at a time
    per worker process."""
    threads = 2 * math.ceil(params.max_concurrency / params.batch_size(params.max_concurrency)) + 2
    return build_task_runner(params.task_runner, address=params.runner_address, workers=params.workers,
                             threads=max(threads, 4))


def _run(params: RunParameters) -> State[Any]:
    """Check the input, wait for the dataset's turn, run the waves on the task runner the run's
    parameters choose (entered here: one flow run per run, no subflow to create, start and end),
    then put the artifacts and the final state on the run."""
    try:  # a bad file, setting or conflicting pair: one line, no traceback
        config = params.config()
        source = params.persona_source(config)
        if source is None:
            load_input(params.input_path or "", limit=params.limit)
        else:
            source.check(config.seed)
    except PersonasimError as exc:
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc), data=exc)
    context = FlowRunContext.get()
    if params.run_name is None and context and context.flow and context.flow.name == "refresh-interactions":
        params = params.model_copy(update={"run_name": "refresh"})  # run ids say which flow made them
    progress_id = progress_artifact(params.dataset_root)
    with dataset_turn(params.dataset_root), _task_runner(params) as runner, api_for_workers(params.task_runner):
        if params.task_runner == "dask" and params.runner_address and (profiling := profiling_workers(runner)):
            get_run_logger().warning(
                "%d Dask worker(s) (%s) run the profiler that can deadlock a worker on Python 3.11 "
                "(python/cpython#116969); start them with DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False",
                len(profiling), ", ".join(profiling[:3]))
        summary = run_pipeline(params, runner, progress_id)
    update_progress_artifact(progress_id, 100.0)
    publish_artifacts(summary)
    return final_state(summary, params.max_failure_ratio)


@flow(name="generate-interactions", log_prints=True, validate_parameters=True)
def generate_interactions(
    input_path: InputPath = None,
    dataset_root: DatasetRoot = "output/dataset",
    config_path: ConfigPath = None,
    backend: Backend = "config",
    local_model: LocalModel = "smollm2",
    run_name: RunName = None,
    seed: Seed = None,
    max_concurrency: MaxConcurrency = 16,
    limit: Limit = None,
    pairs_per_task: PairsPerTask = None,
    wave_size: WaveSize = None,
    task_runner: TaskRunnerChoice = "thread",
    runner_address: RunnerAddress = None,
    workers: Workers = None,
    max_cost: MaxCost = None,
    new_variant: bool = False,
    show_progress: bool = True,
    max_failure_ratio: MaxFailureRatio = None,
    personas: Personas = None,
    queries: QueryPool = None,
    queries_per_persona: QueriesPerPersona = None,
    persona_bank: PersonaBankPath = None,
    mode: RunMode = None,
) -> State[Any]:
    """Generate interactions for every persona–query pair not yet in the dataset, and write the datasets.

    Pairs go out in batches (mapped tasks), each pair through style transfer, noise and the turn
    loop with `max_concurrency` calls in flight; results are committed to the Parquet tables in
    waves as batches come back; a rerun skips what is stored and redoes what failed. Returns the
    run's summary; raises RunFailed (its final state: Failed) when no pair succeeded or more than
    `max_failure_ratio` of them failed, RunInterrupted (Cancelled) when stopped.

    Args:
        input_path: Pair file (JSONL, JSON, CSV, Parquet) or a folder of them; a relative path is
            read from the deployment's working directory. Empty: pairs are made from personas and
            a query pool (the options below, or the config's personas and queries sections).
        dataset_root: Dataset root: a local folder (relative to the working directory) or an
            object-storage URL such as s3://bucket/prefix.
        config_path: YAML config; empty: the offline backend (no API key).
        backend: 'config': the models the config names; 'local': every role on a llama.cpp model
            started for the run.
        local_model: With backend 'local': 'smollm2' (bundled) or a GGUF file path.
        run_name: A name for the run id (letters, digits, _ . -).
        seed: Overrides the config's seed (a new seed on an existing dataset needs new_variant).
        max_concurrency: LLM calls in flight at once, per endpoint.
        limit: Only the first N pairs of the input.
        pairs_per_task: Pairs per Prefect task run; empty: chosen from the pairs and the
            concurrency (at most 50 pair task runs).
        wave_size: Pairs per committed Parquet wave; empty: twice the concurrency.
        task_runner: 'thread' (the flow's process), 'dask' or 'ray' (worker processes, local or on
            a cluster).
        runner_address: An existing Dask scheduler (tcp://host:8786) or Ray cluster
            (ray://host:10001); empty: a local cluster started for the run.
        workers: Worker processes of a local Dask or Ray cluster; empty: one per core.
        max_cost: USD: once the run has spent it, no new pair starts (needs prices for every
            model in the config).
        new_variant: Add the run to a dataset made with another seed or config, as a variant
            partitioned and counted apart.
        show_progress: Live progress: a display in a terminal, a log line every few seconds
            elsewhere.
        max_failure_ratio: The run ends Failed when more than this share of its pairs failed;
            empty: only when none succeeded.
        personas: A number of personas to sample from the persona bank, or a persona file (JSONL,
            JSON, CSV, Parquet; PersonaGym's persona files too); without input_path.
        queries: The query pool the personas' queries are assigned from (a file or a folder).
        queries_per_persona: Queries assigned to each persona (default: the config's, else 5).
        persona_bank: A persona bank YAML (PersonaGym's persona.yaml layout); empty: the config's,
            else the default bank.
        mode: 'online': every call as its pair needs it; 'batch': the pairs advance one call per
            round, each round's calls through the endpoints' batch APIs (half the price, up to a
            day a round; stop and run again to pick the batches up); empty: the config's.
    """
    return _run(RunParameters(
        input_path=input_path, dataset_root=dataset_root, config_path=config_path, backend=backend,
        local_model=local_model, run_name=run_name, seed=seed, max_concurrency=max_concurrency, limit=limit,
        pairs_per_task=pairs_per_task, wave_size=wave_size, task_runner=task_runner, runner_address=runner_address,
        workers=workers, max_cost=max_cost, new_variant=new_variant, show_progress=show_progress,
        max_failure_ratio=max_failure_ratio, personas=personas, queries=queries,
        queries_per_persona=queries_per_persona, persona_bank=persona_bank, mode=mode))


# For schedules: the same flow and options under its own name, pointed by its deployment at a
# folder where pair files are dropped; pairs already in the dataset are skipped, so a refresh with
# nothing new costs no LLM call.
refresh_interactions = generate_interactions.with_options(
    name="refresh-interactions",
    description="Pick up pairs (in a file or a folder of files) not yet in the dataset; same options as "
                "generate-interactions.")
