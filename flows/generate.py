"""The Prefect flows: generate interactions for every persona–query pair into the datasets."""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import TaskRunner
from prefect.utilities.annotations import quote, unmapped
from pydantic import BaseModel, ConfigDict, Field, model_validator

from personasim.config import load_config, with_local_model, with_request_limit, with_worker_share
from personasim.dataset import estimate_cost
from personasim.errors import LLMCallError
from personasim.inputs import load_input
from personasim.interaction_generator import Interaction, PairFailure
from personasim.llm.usage import UsageRecord
from personasim.pairs import Pair
from flows.runners import (
    TaskRunnerName,
    api_for_workers,
    build_task_runner,
    worker_processes,
)
from tasks.datasets import prepare_dataset_task, publish_statistics_task, write_wave_task
from tasks.generation import (
    RETRIES,
    Batch,
    failure_for,
    noise_initial_task,
    store_task,
    style_transfer_task,
    turn_loop_task,
)
from tasks.runtime import RunKey, Runtime, release, using

STAGES = ("style_transfer", "noise_initial_query", "turn_loop", "store")


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
    pairs_per_task: int = Field(8, ge=1, le=1000,
                                description="pairs per task run (1 = a task run per pair; more = less overhead)")
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


@dataclass
class _Wave:
    wave_id: str
    batches: list[list[Pair]]
    futures: list[tuple[PrefectFuture, ...]] = field(default_factory=list)  # per batch, one per stage
    recovered: list[Interaction] = field(default_factory=list)


@dataclass
class _Tally:
    done: int = 0
    failed: int = 0
    recovered: int = 0
    turns: int = 0
    user_turns: int = 0
    noised_turns: int = 0
    failures: list[str] = field(default_factory=list)
    tokens_by_model: dict[str, dict[str, int]] = field(default_factory=dict)

    def add_usage(self, by_model: dict[str, dict[str, int]]) -> None:
        for model, totals in by_model.items():
            mine = self.tokens_by_model.setdefault(model, {"calls": 0, "input_tokens": 0, "output_tokens": 0})
            for name, value in totals.items():
                mine[name] += value

    def token_total(self, name: str) -> int:
        return sum(t[name] for t in self.tokens_by_model.values())

    def add(self, interactions: list[Interaction], failures: list[PairFailure]) -> None:
        self.done += len(interactions)
        self.failed += len(failures)
        for ix in interactions:
            self.turns += ix.num_turns
            noise = ix.metadata.get("noise") or {}
            self.user_turns += noise.get("user_turns", 0)
            self.noised_turns += noise.get("noised_turns", 0)
        self.failures.extend(f"{f.persona_id}/{f.query_id or f.original_query[:30]}: {f.reason}"
                             for f in failures[:5])


def _submit(key: RunKey, wave: _Wave) -> None:
    """Map the four stages over the wave's batches, each stage waiting on the one before.

    Key and batches are `Sealed`: Prefect passes them whole instead of walking every pair.
    """
    plans = style_transfer_task.map(unmapped(key), [Batch(batch) for batch in wave.batches])
    noised = noise_initial_task.map(unmapped(key), plans)
    interactions = turn_loop_task.map(unmapped(key), noised)
    stored = store_task.map(unmapped(key), interactions)
    wave.futures = list(zip(plans, noised, interactions, stored))


def _outcome(runtime: Runtime, batch: list[Pair], futures: tuple[PrefectFuture, ...]
             ) -> tuple[list[Any], list[UsageRecord]]:
    """Per pair: its Interaction, or a PairFailure naming the stage it did not get past; and the calls made."""
    current: list[Any] = list(batch)
    usage: list[UsageRecord] = []
    for stage, future in zip(STAGES, futures):
        state = future.state
        if state.is_completed():
            output = future.result()
            current = output.items
            usage.extend(output.usage)
            continue
        error = state.result(raise_on_failure=False) if state.is_failed() else None
        reason = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else (
            state.message or state.name)
        attempts = 1 + (RETRIES if isinstance(error, LLMCallError) else 0)
        return [failure_for(item, runtime, stage, reason, attempts) for item in current], usage
    return current, usage


def _forget_results(futures: list[PrefectFuture]) -> None:
    """Let a written wave's results go.

    Prefect links every task result (and its fields) to its state for the whole flow run, so
    results passed by value can be traced; ours travel as futures, and without this the run's
    bookkeeping would grow with every batch it made.
    """
    context = FlowRunContext.get()
    if context is None:
        return
    for future in futures:
        if future.state.is_completed():
            context.run_results.pop(id(future.result()), None)


def _finish(key: RunKey, runtime: Runtime, wave: _Wave, run_date: str, tally: _Tally) -> None:
    wait([f for batch in wave.futures for f in batch])
    interactions, failures, usage = list(wave.recovered), [], []
    for batch, futures in zip(wave.batches, wave.futures):
        items, calls = _outcome(runtime, batch, futures)
        usage.extend(calls)
        for item in items:
            (failures if isinstance(item, PairFailure) else interactions).append(item)
    tally.add_usage(write_wave_task(key, wave.wave_id, run_date, quote(interactions), quote(failures),
                                    quote(usage)))
    _forget_results([f for batch in wave.futures for f in batch])
    tally.add(interactions, failures)
    tally.recovered += len(wave.recovered)


def _summary_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("pairs", "done", "failed", "skipped", "recovered", "turns", "noise_rate", "llm_calls",
            "input_tokens", "output_tokens", "cost_usd")
    return [{"metric": k, "value": summary[k]} for k in keys]


def run_pipeline(params: RunParameters) -> dict[str, Any]:
    """The work of a run: plan waves, map the pair tasks, write committed waves, publish statistics."""
    logger = get_run_logger()
    config = load_config(params.config_path)
    if params.seed is not None:
        config = config.model_copy(update={"seed": params.seed})
    if params.backend == "local":
        config = with_local_model(config, params.local_model)
    config = with_request_limit(config, params.max_concurrency)
    workers = worker_processes()
    config = with_worker_share(config, workers)
    pairs = load_input(params.input_path, limit=params.limit)
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    run_id = f"{params.run_name or 'run'}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_date = f"{started:%Y-%m-%d}"
    key = RunKey(run_id, config, params.dataset_root, -(-params.max_concurrency // workers))
    try:
        with using(key) as runtime, runtime.dataset.lock():
            in_dataset, stored_only = prepare_dataset_task(key)
            generator = runtime.generator
            ids = [generator.interaction_id_for(p) for p in pairs]
            skipped = sum(1 for i in ids if i in in_dataset)
            recover = [i for i in ids if i in stored_only]
            todo = [p for p, i in zip(pairs, ids) if i not in in_dataset and i not in stored_only]
            logger.info("run %s: %d pairs, %d already in the dataset, %d stored but not yet written, %d to generate",
                        run_id, len(pairs), skipped, len(recover), len(todo))
            tally = _Tally()
            waves: deque[_Wave] = deque()
            if recover:
                recovered = [runtime.storage.load_interaction(i) for i in recover]
                _finish(key, runtime, _Wave(f"{run_id}-recovered", [], recovered=recovered), run_date, tally)
            size, per_task = _wave_size(params), params.pairs_per_task
            for n, start in enumerate(range(0, len(todo), size)):
                chunk = todo[start:start + size]
                batches = [chunk[i:i + per_task] for i in range(0, len(chunk), per_task)]
                wave = _Wave(f"{run_id}-w{n:05d}", batches)
                _submit(key, wave)
                waves.append(wave)
                if len(waves) >= 2:  # keep the next wave running while this one is written
                    _finish(key, runtime, waves.popleft(), run_date, tally)
            while waves:
                _finish(key, runtime, waves.popleft(), run_date, tally)
            stats = publish_statistics_task(key)
    finally:
        release(key)
    for line in tally.failures:
        logger.warning("failed pair %s", line)
    summary = {
        "run_id": run_id, "dataset_root": params.dataset_root, "task_runner": params.task_runner,
        "workers": workers, "pairs": len(pairs), "done": tally.done,
        "failed": tally.failed, "skipped": skipped, "recovered": tally.recovered, "turns": tally.turns,
        "noise_rate": round(tally.noised_turns / tally.user_turns, 4) if tally.user_turns else 0.0,
        "llm_calls": tally.token_total("calls"), "input_tokens": tally.token_total("input_tokens"),
        "output_tokens": tally.token_total("output_tokens"),
        "cost_usd": estimate_cost(tally.tokens_by_model, config.pricing)["total_usd"],
        "elapsed_s": round(time.perf_counter() - clock, 3), "statistics": stats,
    }
    create_table_artifact(key="personasim-run-summary", table=_summary_table(summary),
                          description=f"personasim run {run_id} into {params.dataset_root}")
    logger.info("run %s: %d done, %d failed, %d skipped, %d recovered", run_id, tally.done, tally.failed,
                skipped, tally.recovered)
    return summary


def _wave_size(params: RunParameters) -> int:
    """Pairs per committed wave: enough to keep every pair slot busy while the previous wave is written."""
    return params.wave_size or max(2 * params.max_concurrency, 4 * params.pairs_per_task)


def _task_runner(params: RunParameters) -> TaskRunner:
    """Threads for the thread runner: a task waiting on its upstream future holds one, and every
    stage of two waves is submitted at once. Dask and Ray workers run one task at a time."""
    threads = len(STAGES) * 2 * -(-_wave_size(params) // params.pairs_per_task)
    return build_task_runner(params.task_runner, address=params.runner_address, workers=params.workers,
                             threads=threads)


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
    pairs_per_task: int = 8,
    wave_size: int | None = None,
    task_runner: TaskRunnerName = "thread",
    runner_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Generate interactions for every persona–query pair not yet in the dataset, and write the datasets.

    Pairs fan out as mapped tasks (style transfer, noise on the initial query, the turn loop,
    storage) with `max_concurrency` in flight; each wave of results is committed to the Parquet
    tables; a rerun skips what is stored and redoes what failed.
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
    pairs_per_task: int = 8,
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
