"""Every place personasim works around Prefect (or Dask and Ray under it), in one module.

Each has a test in tests/integration/test_prefect_compat.py that fails if Prefect's behaviour
changes, so a Prefect upgrade says at once which of these can go.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from personasim.config import PersonasimConfig
from personasim.dataset import Dataset
from personasim.dataset.spend import SpendLog
from personasim.engine import Engine

T = TypeVar("T")
IDLE_SECONDS = 600.0


class Sealed(Generic[T]):
    """A task input or result that task runners pass whole.

    Prefect walks lists, tuples, dicts, dataclasses and pydantic models in every task's inputs
    and results looking for futures (a large share of a flow's CPU with thousands of pairs), and
    Dask rebuilds tuples, so Prefect's own `quote` arrives on a Dask worker as a bare tuple. A
    plain class with slots is one opaque value to both.
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class Completions:
    """Task futures as they finish, waited for without `prefect.futures.wait`.

    With a timeout, Prefect's `wait` arms a SIGALRM timer on the main thread at every call; an
    alarm that lands inside `threading.Condition`'s internals breaks its lock ("RuntimeError:
    release unlocked lock") and fails the flow run (seen when a cancellation met the flow's
    half-second poll). A done-callback into a queue needs no signal.
    """

    def __init__(self, futures: list[PrefectFuture[Any]]) -> None:
        self.pending = len(futures)
        self._done: queue.SimpleQueue[PrefectFuture[Any]] = queue.SimpleQueue()
        for future in futures:
            future.add_done_callback(self._done.put)

    def finished(self, timeout: float) -> list[PrefectFuture[Any]]:
        """The futures finished since the last call, waiting up to `timeout` seconds for the first."""
        try:
            done = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return []
        while not self._done.empty():
            done.append(self._done.get())
        self.pending -= len(done)
        return done


def forget_result(future: PrefectFuture[Any]) -> None:
    """Let a task result go once the flow has used it.

    Prefect links every task result to its state in the flow run's `run_results` for the whole
    run, so a run of 10k pairs would hold every interaction it made until the end.
    """
    context = FlowRunContext.get()
    if context is not None and future.state.is_completed():
        context.run_results.pop(id(future.result()), None)


@contextmanager
def api_for_workers(task_runner: str) -> Iterator[None]:
    """Worker processes report their task runs to this process's Prefect API.

    With no PREFECT_API_URL set, Prefect gives each process an embedded server of its own:
    workers would start theirs (and lose them, mid-run, with the cluster). Tasks carry the
    settings they were submitted under, so setting the URL here reaches every worker.
    """
    if task_runner == "thread" or PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # a singleton: the one this process already runs
    server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield


@contextmanager
def on_embedded_api(url: str | None) -> Iterator[None]:
    """Flow runs on the command line's own embedded API at `url` (None: as configured).

    The URL is set here rather than trusted from the environment Prefect read at import (the
    server may have moved to another port while starting), and flow runs send no heartbeats:
    heartbeats let a server that outlives a run notice it crashed, and the embedded API ends with
    the run; each flow's heartbeat thread, joined in one-second steps, held the exit of every run
    by up to a second.
    """
    if url is None:
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def worker_processes(task_runner: str, runner: Any) -> int:
    """How many processes of the run's task runner (started) share the endpoints' rate limits."""
    if task_runner == "dask":
        return max(1, len(runner.client.scheduler_info(n_workers=-1)["workers"]))
    if task_runner == "ray":
        import ray

        return max(1, math.floor(ray.cluster_resources().get("CPU", 1)))
    return 1


class RunHandle:
    """What a task needs of its run (the engine, the dataset), handed to every task explicitly.

    In the flow's own process (the thread runner) it carries the run's engine, built once. Sent
    to a Dask or Ray worker it travels as (run id, config, root, concurrency) and the worker
    builds the engine once per run: a worker process outlives runs, so it keeps a run's engine
    while tasks use it and lets it go after `IDLE_SECONDS` without one.
    """

    __slots__ = ("run_id", "config", "dataset_root", "concurrency", "budget_usd", "_engine", "_spend", "_lock",
                 "_active", "_last_used", "_stopped")

    def __init__(self, run_id: str, config: PersonasimConfig, dataset_root: str, concurrency: int,
                 budget_usd: float | None = None) -> None:
        self.run_id, self.config, self.dataset_root = run_id, config, dataset_root
        self.concurrency, self.budget_usd = concurrency, budget_usd
        self._stopped: str | None = None
        self._engine: Engine | None = None
        self._spend: SpendLog | None = None
        self._lock = threading.Lock()
        self._active = 0
        self._last_used = time.monotonic()

    @contextmanager
    def in_use(self) -> Iterator[RunHandle]:
        """Held by a task while it works, so a worker never lets a busy run go."""
        with self._lock:
            self._active += 1
        try:
            yield self
        finally:
            with self._lock:
                self._active -= 1
                self._last_used = time.monotonic()

    def idle(self, now: float) -> bool:
        with self._lock:
            return self._active == 0 and now - self._last_used > IDLE_SECONDS

    @property
    def dataset(self) -> Dataset:
        return Dataset(self.dataset_root)

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                dataset = self.dataset
                self._spend = SpendLog(dataset, self.run_id)
                self._engine = Engine.from_config(self.config, store=dataset.interaction_storage(),
                                                  concurrency=self.concurrency, spend=self._spend,
                                                  budget_usd=self.budget_usd)
            return self._engine

    def stop(self, reason: str) -> None:
        """No new pair starts in this process (see Engine.stop)."""
        self._stopped = self._stopped or reason
        with self._lock:
            engine = self._engine
        if engine is not None:
            engine.stop(reason)

    def abort(self) -> None:
        """Pairs in flight in this process are given up (see Engine.abort)."""
        with self._lock:
            engine = self._engine
        if engine is not None:
            engine.abort()

    @property
    def stopped(self) -> str | None:
        with self._lock:
            engine = self._engine
        return self._stopped or (engine.stopped if engine is not None else None)

    def flush_spend(self) -> None:
        """Make the calls paid for so far durable (object storage writes them per batch)."""
        with self._lock:
            spend = self._spend
        if spend is not None:
            spend.flush()

    def close(self) -> None:
        with self._lock:
            engine, spend, self._engine, self._spend = self._engine, self._spend, None, None
        if engine is not None:
            engine.close()
        if spend is not None:
            spend.close()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _worker_handle, (self.run_id, self.config, self.dataset_root, self.concurrency, self.budget_usd)


_worker_runs: dict[str, RunHandle] = {}
_worker_lock = threading.Lock()


def _worker_handle(run_id: str, config: PersonasimConfig, dataset_root: str, concurrency: int,
                   budget_usd: float | None) -> RunHandle:
    """The run's handle in a worker process: the same one for every task of the run."""
    now = time.monotonic()
    with _worker_lock:
        stale = [_worker_runs.pop(k) for k, h in list(_worker_runs.items()) if k != run_id and h.idle(now)]
        handle = _worker_runs.get(run_id)
        if handle is None:
            handle = _worker_runs[run_id] = RunHandle(run_id, config, dataset_root, concurrency, budget_usd)
    for old in stale:
        old.close()
    return handle
