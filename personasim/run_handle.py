"""What a task needs of its run, handed to every task explicitly: the run's engine and dataset.

Plain Python (no Prefect): the command line opens the run and puts its pairs in flight before
Prefect is even imported (see `head_start`); the flow's tasks then use the same handle.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from personasim.config import PersonasimConfig
from personasim.dataset import Dataset
from personasim.dataset.identity import check_variant, record_variant
from personasim.dataset.spend import SpendLog
from personasim.engine import Engine, Triage
from personasim.records import Pair

IDLE_SECONDS = 600.0


def new_run_id(run_name: str | None, started: datetime) -> str:
    """A run's id: its name, when it started, and a random tail (two runs in one second differ)."""
    return f"{run_name or 'run'}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


class RunHandle:
    """What a task needs of its run (the engine, the dataset), handed to every task explicitly.

    In the flow's own process (the thread runner) it carries the run's engine, built once. Sent
    to a Dask or Ray worker it travels as (run id, config, root, concurrency) and the worker
    builds the engine once per run: a worker process outlives runs, so it keeps a run's engine
    while tasks use it and lets it go after `IDLE_SECONDS` without one.
    """

    __slots__ = ("run_id", "config", "dataset_root", "concurrency", "budget_usd", "_engine", "_spend", "_lock",
                 "_active", "_last_used", "_stopped", "_prepared")

    def __init__(self, run_id: str, config: PersonasimConfig, dataset_root: str, concurrency: int,
                 budget_usd: float | None = None) -> None:
        self.run_id, self.config, self.dataset_root = run_id, config, dataset_root
        self.concurrency, self.budget_usd = concurrency, budget_usd
        self._stopped: str | None = None
        self._prepared = False
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

    def open_dataset(self, new_variant: bool = False) -> None:
        """Refuse another seed or spec unless asked for as a new variant; drop what a crashed wave
        left (once per run: later, pairs in flight are writing)."""
        if self._prepared:
            return
        dataset, config = self.dataset, self.config
        check_variant(dataset, config.fingerprint(), config.seed, new_variant=new_variant)
        dataset.prepare()
        record_variant(dataset, config.fingerprint(), config.seed, config.spec.model_dump(mode="json"))
        self._prepared = True

    def prepare(self, pairs: Sequence[Pair], new_variant: bool = False) -> Triage:
        """Open the dataset (see `open_dataset`) and sort the pairs into skip (in the dataset),
        recover (stored), generate."""
        self.open_dataset(new_variant)
        return self.engine.triage(pairs, self.dataset.interaction_ids())

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
