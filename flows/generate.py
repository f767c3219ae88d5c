"""The Prefect flows: generate interactions for every persona–query pair into the datasets.

The flow only composes tasks: prepare (triage), recover what was stored, generate batches of
pairs (one engine call each), write committed waves as batches come back, publish statistics.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import wait
from prefect.task_runners import TaskRunner
from pydantic import BaseModel, ConfigDict, Field, model_validator

from personasim.config import PersonasimConfig, load_config, with_local_model, with_request_limit, with_worker_share
from personasim.dataset import Dataset
from personasim.flows.runners import TaskRunnerName, build_task_runner
from personasim.inputs import load_input
from personasim.interrupt import StopRequest, stop_on_signals
from personasim.progress import RunProgress, show_progress
from personasim.records import Failure, Outcome, Pair
from personasim.report import report_markdown
from personasim.tasks.datasets import publish_statistics_task, write_wave_task
from personasim.tasks.generation import generate_task, prepare_task, recover_task
from personasim.tasks.prefect_compat import RunHandle, Sealed, api_for_workers, forget_result, worker_processes

MAX_TASK_RUNS = 200  # pair tasks per run when pairs_per_task is chosen for you


class RunParameters(BaseModel):
    """What a run takes; validated before any work starts (also for runs started from the UI)."""

    model_config = ConfigDict(extra="forbid")

    input_path: str = Field(description="pair file (JSONL, JSON, CSV, Parquet) or a directory of them")
    dataset_root: str = Field("output/dataset", description="local directory or object-storage URL")
    config_path: str | None = Field(None, description="YAML config; the offline defaults when empty")
    backend: Literal["config", "local"] = Field(
        "config", description="'local': every role on a llama.cpp model started for this run")
    local_model: str = Field("smollm2", description="with backend 'local': 'smollm2' (bundled) or a GGUF path")
    run_name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    seed: int | None = Field(None, description="overrides the config's seed")
    max_concurrency: int = Field(16, ge=1, le=1024, description="LLM calls in flight at once, per endpoint")
    limit: int | None = Field(None, ge=1, description="only the first N pairs")
    pairs_per_task: int | None = Field(None, ge=1, le=10_000,
                                       description="pairs per task run (default: from the pairs and concurrency)")
    wave_size: int | None = Field(None, ge=1, le=100_000,
                                  description="pairs per committed Parquet wave (default 2 x concurrency)")
    task_runner: TaskRunnerName = Field(
        "thread", description="'thread' (this process), 'dask' or 'ray' (worker processes, here or on a cluster)")
    runner_address: str | None = Field(
        None, description="an existing Dask scheduler (tcp://host:8786) or Ray cluster (ray://host:10001); "
                          "empty: a local cluster started for the run")
    workers: int | None = Field(None, ge=1, le=1024, description="worker processes of a local cluster (default: cores)")
    max_cost: float | None = Field(None, gt=0, description="USD: once this run has spent it, no new pair starts "
                                                           "(prices from the config's pricing table)")
    new_variant: bool = Field(False, description="add this run to a dataset made with another seed or config, "
                                                 "as a variant partitioned and counted apart")
    show_progress: bool = Field(True, description="live progress in a terminal, a plain line every few seconds "
                                                  "elsewhere")

    @model_validator(mode="after")
    def _cluster_options_need_a_cluster(self) -> RunParameters:
        if self.task_runner == "thread" and (self.runner_address or self.workers):
            raise ValueError("runner_address and workers are for task_runner 'dask' or 'ray'")
        if self.runner_address and self.workers:
            raise ValueError("workers sizes a local cluster; an existing one at runner_address has its own")
        return self

    def config(self) -> PersonasimConfig:
        """The config file with this run's overrides (seed, local model, concurrency) applied."""
        config = load_config(self.config_path)
        if self.seed is not None:
            config = config.with_seed(self.seed)
        if self.backend == "local":
            config = with_local_model(config, self.local_model)
        return with_request_limit(config, self.max_concurrency)

    def batch_size(self, pairs: int) -> int:
        """Pairs per task run: as asked, else few enough task runs for the API and enough to keep
        every pair slot busy."""
        return self.pairs_per_task or max(1, math.ceil(pairs / MAX_TASK_RUNS), math.ceil(self.max_concurrency / 4))

    def wave(self, batch_size: int) -> int:
        return self.wave_size or max(2 * self.max_concurrency, batch_size)


@dataclass
class Tally:
    """What this run's interactions were like, for its summary (counts and cost: RunProgress)."""

    recovered: int = 0
    turns: int = 0
    user_turns: int = 0
    noised_turns: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, Failure):
                if len(self.failures) < 5:
                    self.failures.append(f"{outcome.persona_id}/{outcome.query_id or outcome.original_query[:30]}: "
                                         f"{outcome.reason}")
                continue
            self.turns += outcome.num_turns
            self.user_turns += outcome.user_turns
            self.noised_turns += outcome.noised_turns


GRACE_S = 5.0  # after a stop, how long pairs in flight may take before they are given up


def run_pipeline(params: RunParameters) -> dict[str, Any]:
    """The work of a run: triage, recover, generate batches, write committed waves, publish statistics.

    A stop (Ctrl-C, SIGTERM, the budget) starts no new pair, lets pairs in flight finish for
    GRACE_S seconds, gives up the rest (they are redone by the next run) and commits what is done.
    """
    logger = get_run_logger()
    workers = worker_processes(params.task_runner)
    config = with_worker_share(params.config(), workers)
    pairs = load_input(params.input_path, limit=params.limit)
    started = datetime.now(timezone.utc)
    run_id = f"{params.run_name or 'run'}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_date = f"{started:%Y-%m-%d}"
    budget = params.max_cost if params.max_cost is not None else config.budget.max_cost_usd
    run = RunHandle(run_id, config, params.dataset_root, -(-params.max_concurrency // workers),
                    None if budget is None else budget / workers)
    tally = Tally()
    try:
        with Dataset(params.dataset_root).lock(), stop_on_signals(lambda: run.stop("interrupted")) as stop:
            triage = prepare_task(run, Sealed(pairs), params.new_variant).value
            logger.info("run %s: %d pairs, %d already in the dataset, %d stored but not yet written, %d to generate",
                        run_id, len(pairs), len(triage.skipped), len(triage.recover), len(triage.todo))
            progress = RunProgress(len(triage.todo) + len(triage.recover), config.pricing)
            if triage.recover:
                recovered: list[Outcome] = list(recover_task(run, Sealed(triage.recover)).value)
                write_wave_task(run, f"{run_id}-recovered", run_date, Sealed(recovered))
                progress.add(recovered, paid=False)
                tally.add(recovered)
                tally.recovered = len(recovered)
            size = params.batch_size(len(triage.todo))
            with show_progress(progress, enabled=params.show_progress):
                _generate(run, triage.todo, size, params.wave(size), run_date, progress, tally, stop)
            stats, report = publish_statistics_task(run)
    finally:
        run.close()
    for line in tally.failures:
        logger.warning("failed pair %s", line)
    books = progress.snapshot()
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
        "cost_usd": books.cost_usd, "elapsed_s": round(books.elapsed_s, 3), "statistics": stats, "report": report,
    }
    create_table_artifact(key="personasim-run-summary", table=_summary_table(summary),
                          description=f"personasim run {run_id} into {params.dataset_root}")
    create_markdown_artifact(key="personasim-quality", markdown=report_markdown(stats, report),
                             description=f"the dataset {params.dataset_root} after run {run_id}")
    logger.info("run %s: %d done, %d failed, %d skipped, %d recovered%s", run_id, books.done, books.failed,
                len(triage.skipped), tally.recovered, f"; stopped: {stopped}" if stopped else "")
    return summary


def _generate(run: RunHandle, todo: list[Pair], size: int, wave_size: int, run_date: str, progress: RunProgress,
              tally: Tally, stop: StopRequest) -> None:
    """Batches of pairs out as tasks; outcomes back into committed waves as the batches finish."""
    futures = [generate_task.submit(run, Sealed(todo[i:i + size])) for i in range(0, len(todo), size)]
    artifact = cast(UUID, create_progress_artifact(0.0, description=f"pairs of run {run.run_id}")) if todo else None
    wave: list[Outcome] = []
    waves = 0
    pending = list(futures)
    while pending:
        finished, not_done = wait(pending, timeout=0.5)
        pending = list(not_done)
        for future in finished:
            outcomes = future.result().value
            forget_result(future)
            progress.add(outcomes)
            tally.add(outcomes)
            wave.extend(outcomes)
        if wave and (len(wave) >= wave_size or not pending):
            write_wave_task(run, f"{run.run_id}-w{waves:05d}", run_date, Sealed(wave))
            wave, waves = [], waves + 1
            if artifact is not None:
                update_progress_artifact(artifact, 100.0 * progress.snapshot().finished / max(1, progress.total))
        if stop.requested and stop.since() > GRACE_S:
            run.abort()  # pairs still in flight are given up: their batches come back at once
            if stop.since() > 2 * GRACE_S:  # workers in other processes: stop waiting for them
                break
    if wave:
        write_wave_task(run, f"{run.run_id}-w{waves:05d}", run_date, Sealed(wave))


def _summary_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("pairs", "done", "failed", "skipped", "recovered", "turns", "noise_rate", "llm_calls",
            "input_tokens", "output_tokens", "cost_usd")
    return [{"metric": k, "value": summary[k]} for k in keys]


def _task_runner(params: RunParameters) -> TaskRunner[Any]:
    """Threads for the thread runner: enough batch tasks running to keep every pair slot busy (a
    running task waits on its pairs in the engine's pool). Dask and Ray run one task at a time
    per worker process."""
    threads = 2 * math.ceil(params.max_concurrency / params.batch_size(params.max_concurrency)) + 2
    return build_task_runner(params.task_runner, address=params.runner_address, workers=params.workers,
                             threads=max(threads, 4))


@flow(name="pair-waves", log_prints=True)
def _pair_waves(params: RunParameters) -> dict[str, Any]:
    with api_for_workers(params.task_runner):
        return run_pipeline(params)


@flow(name="generate-interactions", log_prints=True, validate_parameters=True)
def generate_interactions(
    input_path: str,
    dataset_root: str = "output/dataset",
    config_path: str | None = None,
    backend: Literal["config", "local"] = "config",
    local_model: str = "smollm2",
    run_name: str | None = None,
    seed: int | None = None,
    max_concurrency: int = 16,
    limit: int | None = None,
    pairs_per_task: int | None = None,
    wave_size: int | None = None,
    task_runner: TaskRunnerName = "thread",
    runner_address: str | None = None,
    workers: int | None = None,
    max_cost: float | None = None,
    new_variant: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Generate interactions for every persona–query pair not yet in the dataset, and write the datasets.

    Pairs go out in batches (mapped tasks), each pair through style transfer, noise and the turn
    loop with `max_concurrency` calls in flight; results are committed to the Parquet tables in
    waves as batches come back; a rerun skips what is stored and redoes what failed.
    """
    params = RunParameters(input_path=input_path, dataset_root=dataset_root, config_path=config_path,
                           backend=backend, local_model=local_model, run_name=run_name, seed=seed,
                           max_concurrency=max_concurrency, limit=limit, pairs_per_task=pairs_per_task,
                           wave_size=wave_size, task_runner=task_runner, runner_address=runner_address,
                           workers=workers, max_cost=max_cost, new_variant=new_variant, show_progress=show_progress)
    return _pair_waves.with_options(task_runner=_task_runner(params))(params)


@flow(name="refresh-interactions", log_prints=True, validate_parameters=True)
def refresh_interactions(
    input_path: str,
    dataset_root: str = "output/dataset",
    config_path: str | None = None,
    max_concurrency: int = 16,
    pairs_per_task: int | None = None,
    task_runner: TaskRunnerName = "thread",
    runner_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """For schedules: pick up pairs (in a file or a directory of files) not yet in the dataset.

    New pairs are appended as a new partition of today's run; what is there is skipped, so a
    refresh with nothing new costs no LLM call.
    """
    run_name = f"refresh-{datetime.now(timezone.utc):%Y%m%d}"
    params = RunParameters(input_path=input_path, dataset_root=dataset_root, config_path=config_path,
                           run_name=run_name, max_concurrency=max_concurrency, pairs_per_task=pairs_per_task,
                           task_runner=task_runner, runner_address=runner_address, workers=workers)
    return _pair_waves.with_options(task_runner=_task_runner(params))(params)
