"""The Prefect flows: generate interactions for every persona–query pair into the datasets.

The flow only composes tasks: prepare (triage), recover what was stored, generate batches of
pairs (one engine call each), write committed waves as batches come back, publish statistics.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from prefect.task_runners import TaskRunner
from pydantic import BaseModel, ConfigDict, Field, model_validator

from personasim.config import PersonasimConfig, load_config, with_local_model, with_request_limit, with_worker_share
from personasim.dataset import Dataset, estimate_cost
from personasim.dataset.quality import as_markdown
from personasim.flows.runners import TaskRunnerName, build_task_runner
from personasim.inputs import load_input
from personasim.records import Failure, Outcome, Usage, usage_totals
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
    """What this run did, for its summary."""

    done: int = 0
    failed: int = 0
    recovered: int = 0
    turns: int = 0
    user_turns: int = 0
    noised_turns: int = 0
    calls: list[Usage] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, outcomes: list[Outcome], *, generated: bool) -> None:
        for outcome in outcomes:
            if generated:
                self.calls.extend(outcome.usage)
            if isinstance(outcome, Failure):
                self.failed += 1
                if len(self.failures) < 5:
                    self.failures.append(f"{outcome.persona_id}/{outcome.query_id or outcome.original_query[:30]}: "
                                         f"{outcome.reason}")
                continue
            self.done += 1
            self.turns += outcome.num_turns
            self.user_turns += outcome.user_turns
            self.noised_turns += outcome.noised_turns


def run_pipeline(params: RunParameters) -> dict[str, Any]:
    """The work of a run: triage, recover, generate batches, write committed waves, publish statistics."""
    logger = get_run_logger()
    workers = worker_processes(params.task_runner)
    config = with_worker_share(params.config(), workers)
    pairs = load_input(params.input_path, limit=params.limit)
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    run_id = f"{params.run_name or 'run'}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_date = f"{started:%Y-%m-%d}"
    run = RunHandle(run_id, config, params.dataset_root, -(-params.max_concurrency // workers))
    tally = Tally()
    try:
        with Dataset(params.dataset_root).lock():
            triage = prepare_task(run, Sealed(pairs)).value
            logger.info("run %s: %d pairs, %d already in the dataset, %d stored but not yet written, %d to generate",
                        run_id, len(pairs), len(triage.skipped), len(triage.recover), len(triage.todo))
            if triage.recover:
                recovered: list[Outcome] = list(recover_task(run, Sealed(triage.recover)).value)
                write_wave_task(run, f"{run_id}-recovered", run_date, Sealed(recovered))
                tally.add(recovered, generated=False)
                tally.recovered = len(recovered)
            size = params.batch_size(len(triage.todo))
            futures = [generate_task.submit(run, Sealed(triage.todo[i:i + size]))
                       for i in range(0, len(triage.todo), size)]
            wave: list[Outcome] = []
            waves = 0
            for future in as_completed(futures):
                outcomes = future.result().value
                forget_result(future)
                tally.add(outcomes, generated=True)
                wave.extend(outcomes)
                if len(wave) >= params.wave(size):
                    write_wave_task(run, f"{run_id}-w{waves:05d}", run_date, Sealed(wave))
                    wave, waves = [], waves + 1
            if wave:
                write_wave_task(run, f"{run_id}-w{waves:05d}", run_date, Sealed(wave))
            stats = publish_statistics_task(run)
    finally:
        run.close()
    for line in tally.failures:
        logger.warning("failed pair %s", line)
    calls = usage_totals(tally.calls)
    by_model: dict[str, list[Usage]] = {}
    for record in tally.calls:
        by_model.setdefault(record.model, []).append(record)
    summary = {
        "run_id": run_id, "dataset_root": params.dataset_root, "task_runner": params.task_runner,
        "workers": workers, "pairs": len(pairs), "done": tally.done, "failed": tally.failed,
        "skipped": len(triage.skipped), "recovered": tally.recovered, "turns": tally.turns,
        "noise_rate": round(tally.noised_turns / tally.user_turns, 4) if tally.user_turns else 0.0,
        "llm_calls": calls["calls"], "input_tokens": calls["input_tokens"], "output_tokens": calls["output_tokens"],
        "cost_usd": estimate_cost({m: usage_totals(r) for m, r in by_model.items()}, config.pricing)["total_usd"],
        "elapsed_s": round(time.perf_counter() - clock, 3), "statistics": stats,
    }
    create_table_artifact(key="personasim-run-summary", table=_summary_table(summary),
                          description=f"personasim run {run_id} into {params.dataset_root}")
    create_markdown_artifact(key="personasim-quality", markdown=as_markdown(stats["quality"]),
                             description=f"quality of the dataset {params.dataset_root} after run {run_id}")
    logger.info("run %s: %d done, %d failed, %d skipped, %d recovered", run_id, tally.done, tally.failed,
                len(triage.skipped), tally.recovered)
    return summary


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
                           workers=workers)
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
