"""The per-run objects tasks share inside one worker process (generator, storage, usage tracker).

Tasks receive small inputs (a pair, a plan, a run key) and find the heavy objects here, so no
client or connection pool is ever serialised into a task's parameters.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from personasim.config import PersonasimConfig
from personasim.dataset import Dataset
from personasim.interaction_generator import InteractionGenerator, InteractionStorage
from personasim.llm.usage import UsageTracker


@dataclass(frozen=True)
class RunKey:
    """Everything a worker needs to rebuild the run's objects: small and picklable."""

    run_id: str
    config: PersonasimConfig
    dataset_root: str
    pair_concurrency: int = 16


@dataclass
class Runtime:
    generator: InteractionGenerator
    storage: InteractionStorage
    dataset: Dataset
    tracker: UsageTracker
    pool: ThreadPoolExecutor  # where a batch task runs its pairs side by side
    memo: dict[tuple[str, str], Any] = field(default_factory=dict)  # (stage, interaction id) -> result

    def forget(self, interaction_ids: set[str]) -> None:
        """Drop the stage results of pairs whose wave is written, so memory stays flat."""
        for key in [k for k in self.memo if k[1] in interaction_ids]:
            self.memo.pop(key, None)


_runtimes: dict[str, Runtime] = {}
_lock = threading.Lock()


def runtime_for(key: RunKey) -> Runtime:
    with _lock:
        runtime = _runtimes.get(key.run_id)
        if runtime is None:
            tracker = UsageTracker()
            dataset = Dataset(key.dataset_root)
            runtime = Runtime(InteractionGenerator.from_config(key.config, tracker),
                              InteractionStorage(dataset.store_dir), dataset, tracker,
                              ThreadPoolExecutor(key.pair_concurrency, thread_name_prefix="personasim-pair"))
            _runtimes[key.run_id] = runtime
        return runtime


def release(key: RunKey) -> None:
    """Close the run's HTTP clients and forget it."""
    with _lock:
        runtime = _runtimes.pop(key.run_id, None)
    if runtime is not None:
        runtime.pool.shutdown(wait=True)
        runtime.generator.clients.close()
