"""The per-run objects tasks share inside one worker process (generator, storage, usage tracker).

Tasks receive small inputs (a pair, a plan, a run key) and find the heavy objects here, so no
client or connection pool is ever serialised into a task's parameters.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

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


@dataclass
class Runtime:
    generator: InteractionGenerator
    storage: InteractionStorage
    dataset: Dataset
    tracker: UsageTracker


_runtimes: dict[str, Runtime] = {}
_lock = threading.Lock()


def runtime_for(key: RunKey) -> Runtime:
    with _lock:
        runtime = _runtimes.get(key.run_id)
        if runtime is None:
            tracker = UsageTracker()
            dataset = Dataset(key.dataset_root)
            runtime = Runtime(InteractionGenerator.from_config(key.config, tracker),
                              InteractionStorage(dataset.store_dir), dataset, tracker)
            _runtimes[key.run_id] = runtime
        return runtime


def release(key: RunKey) -> None:
    """Close the run's HTTP clients and forget it."""
    with _lock:
        runtime = _runtimes.pop(key.run_id, None)
    if runtime is not None:
        runtime.generator.clients.close()
