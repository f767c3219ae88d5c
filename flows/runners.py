"""Which engine runs the pair tasks: Prefect's thread pool, a Dask cluster or a Ray cluster.

The thread pool needs nothing more; Dask and Ray come from Prefect's own integrations
(`personasim[dask]`, `personasim[ray]`), imported only when asked for.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from personasim.errors import ConfigError
from personasim.flows.parameters import TaskRunnerName

_EXTRA = {"dask": ("prefect_dask", "DaskTaskRunner"), "ray": ("prefect_ray", "RayTaskRunner")}


def runner_class(name: str) -> type[Any]:
    """The Dask or Ray task runner class, or a ConfigError saying which extra to install."""
    module, cls = _EXTRA[name]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError:
        raise ConfigError(f"task runner {name!r} needs its extra: pip install 'personasim[{name}]'") from None


def local_workers(workers: int | None) -> int:
    """Worker processes of a cluster started for the run: as asked, else one per core."""
    return workers or os.cpu_count() or 1


def build_task_runner(name: TaskRunnerName, *, address: str | None, workers: int | None,
                      threads: int) -> TaskRunner[Any]:
    """The task runner for a run.

    `threads`: the thread runner's pool size (its waiting tasks hold threads too).
    """
    if name == "thread":
        return ThreadPoolTaskRunner(max_workers=threads)
    runner = runner_class(name)
    if name == "dask":
        if address:
            return runner(address=address)
        # One task at a time per worker process: with several, task runs starting at once in one
        # worker deadlocked there, intermittently, inside Prefect's client set-up (SSL context
        # creation under the GIL); seen in ~1 of 10 runs. Pairs still run `pairs_per_task` at once.
        return runner(cluster_kwargs={"n_workers": local_workers(workers), "threads_per_worker": 1,
                                      "processes": True, "dashboard_address": None})
    init: dict[str, Any] = {} if address else {"num_cpus": local_workers(workers), "include_dashboard": False,
                                                "logging_level": logging.WARNING}
    return runner(address=address, init_kwargs=init)
