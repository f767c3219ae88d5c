"""Which engine runs the pair tasks: Prefect's thread pool, a Dask cluster or a Ray cluster.

The thread pool needs nothing more; Dask and Ray come from Prefect's own integrations
(`personasim[dask]`, `personasim[ray]`), imported only when asked for.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from personasim.errors import ConfigError
from personasim.flows.parameters import TaskRunnerName

_EXTRA = {"dask": ("prefect_dask", "DaskTaskRunner"), "ray": ("prefect_ray", "RayTaskRunner")}

# A Dask worker's statistical profiler calls sys._current_frames() every 10 ms from its event loop.
# On CPython 3.11 that call can deadlock the whole process against another thread (a lock-order
# inversion between the GIL and the runtime's thread list when the garbage collector runs inside
# it: python/cpython#116969, dask/distributed#8616; fixed in 3.12, not in 3.11): a worker froze
# with its batch of pairs half done, in about 1 of 70 runs. personasim never reads the profiles.


def worker_config() -> dict[str, Any]:
    """This process's Dask config with the workers' profiler off, whole (a Nanny merges the config
    it is given over its own one top-level key at a time)."""
    import dask

    merged: dict[str, Any] = dask.config.merge(dask.config.config, {"distributed": {"worker": {"profile": {
        "enabled": False}}}})
    return merged


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
        # One task at a time per worker process: its pairs run `pairs_per_task` at once in the
        # engine's pool anyway. (With several, the profiler deadlock above came in about 1 of 10
        # runs, inside Prefect's client set-up; that is where it was first seen.)
        # The cluster logs only CRITICAL about itself: when it stops at the end of the run, a
        # worker's heartbeat often meets the scheduler already gone and logs a traceback (a race
        # in distributed's shutdown); a task that fails still fails its run, through Prefect.
        return runner(cluster_kwargs={"n_workers": local_workers(workers), "threads_per_worker": 1,
                                      "processes": True, "dashboard_address": None, "config": worker_config(),
                                      "silence_logs": logging.CRITICAL})
    init: dict[str, Any] = {} if address else {"num_cpus": local_workers(workers), "include_dashboard": False,
                                                "logging_level": logging.WARNING}
    return runner(address=address, init_kwargs=init)


def profiling_workers(runner: Any) -> list[str]:
    """The workers of a started Dask runner that can freeze on the profiler deadlock above (a cluster
    personasim starts has the profiler off; one it is pointed at may not). Each worker answers for
    itself: its Python may not be this process's."""
    flags = runner.client.run(_deadlock_prone, on_error="ignore")  # one that cannot answer: no reason to fail
    return sorted(address for address, prone in flags.items() if prone is True)


def _deadlock_prone(dask_worker: Any) -> bool:
    """Whether this Dask worker samples its threads' frames (as it read its config) on Python 3.11."""
    return sys.version_info[:2] == (3, 11) and "profile" in dask_worker.periodic_callbacks
