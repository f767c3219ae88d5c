"""The per-run objects tasks share inside one worker process (generator, storage, pair pool).

Tasks receive small inputs (a pair, a plan, a run key) and find the heavy objects here, so no
client or connection pool is ever serialised into a task's parameters. A worker may be the flow's
own process (thread runner) or a Dask/Ray worker that outlives the run: there a run's objects are
let go once no task has used them for `IDLE_SECONDS`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from personasim.config import PersonasimConfig
from personasim.dataset import Dataset
from personasim.dataset.object_store import ObjectInteractionStorage
from personasim.interaction_generator import InteractionGenerator, InteractionStorage
from personasim.llm.usage import UsageRecord, UsageTracker

IDLE_SECONDS = 600.0


class Sealed:
    """A task input or result that task runners pass whole.

    Prefect walks lists, tuples, dicts, dataclasses and pydantic models in every task's inputs
    and results looking for futures (measured: a large share of the flow's CPU), and Dask
    rebuilds tuples, so Prefect's own `quote` arrives on a Dask worker as a bare tuple. A plain
    class with slots is one value to both.
    """

    __slots__ = ()  # pickle (protocol 2+) copies slot values by itself


class RunKey(Sealed):
    """Everything a worker needs to rebuild the run's objects: small and picklable.

    `config` carries this worker's share of the endpoints' limits (see `with_worker_share`).
    """

    __slots__ = ("run_id", "config", "dataset_root", "pair_concurrency")

    def __init__(self, run_id: str, config: PersonasimConfig, dataset_root: str, pair_concurrency: int = 16) -> None:
        self.run_id, self.config, self.dataset_root = run_id, config, dataset_root
        self.pair_concurrency = pair_concurrency


@dataclass
class StageProgress:
    """A pair's result at one stage, once it has one, and every call made for it there (failed tries too)."""

    result: Any = None
    done: bool = False
    usage: list[UsageRecord] = field(default_factory=list)


@dataclass
class Runtime:
    generator: InteractionGenerator
    storage: InteractionStorage | ObjectInteractionStorage
    dataset: Dataset
    pool: ThreadPoolExecutor  # where a batch task runs its pairs side by side
    progress: dict[tuple[str, str], StageProgress] = field(default_factory=dict)  # (stage, interaction id)
    active: int = 0
    last_used: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.generator.clients.close()


_runtimes: dict[str, Runtime] = {}
_lock = threading.Lock()


def _build(key: RunKey) -> Runtime:
    dataset = Dataset(key.dataset_root)
    generator = InteractionGenerator.from_config(key.config, UsageTracker(retain=False))
    return Runtime(generator, dataset.interaction_storage(), dataset, ThreadPoolExecutor(key.pair_concurrency, thread_name_prefix="personasim-pair"))


@contextmanager
def using(key: RunKey) -> Iterator[Runtime]:
    """The run's objects in this process, built on first use; idle runs' objects are closed."""
    with _lock:
        runtime = _runtimes.get(key.run_id)
        if runtime is None:
            now = time.monotonic()
            idle = [k for k, r in _runtimes.items() if r.active == 0 and now - r.last_used > IDLE_SECONDS]
            stale = [_runtimes.pop(k) for k in idle]
            runtime = _runtimes[key.run_id] = _build(key)
        else:
            stale = []
        runtime.active += 1
    for old in stale:
        old.close()
    try:
        yield runtime
    finally:
        with _lock:
            runtime.active -= 1
            runtime.last_used = time.monotonic()


def release(key: RunKey) -> None:
    """Close the run's HTTP clients and pair pool in this process, and forget them."""
    with _lock:
        runtime = _runtimes.pop(key.run_id, None)
    if runtime is not None:
        runtime.close()
