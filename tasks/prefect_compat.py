"""Every place personasim works around Prefect (or Dask and Ray under it), in one module.

Each has a test in tests/integration/test_prefect_compat.py that fails if Prefect's behaviour
changes, so a Prefect upgrade says at once which of these can go.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    get_current_settings,
    temporary_settings,
)

T = TypeVar("T")


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
def command_line_flow(url: str | None) -> Iterator[None]:
    """A command-line run's flow: on the command's own embedded API at `url` (None: the local
    server, or as configured), without heartbeats unless the user asked for them.

    The URL is set here rather than trusted from the environment Prefect read at import (the
    server may have moved to another port while starting). Heartbeats let a server that outlives
    a run mark it crashed (with an automation the user sets up); each flow's heartbeat thread,
    joined in one-second steps, held the exit of every run by up to a second (1.3 s in a profiled
    one-pair run), so they are on only when PREFECT_FLOWS_HEARTBEAT_FREQUENCY is set (environment
    or profile).
    """
    updates: dict[Any, Any] = {} if get_current_settings().flows.model_fields_set & {"heartbeat_frequency"} else {
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    if url is not None:
        updates[PREFECT_API_URL] = url
    with temporary_settings(updates=updates):
        yield


def worker_processes(task_runner: str, runner: Any) -> int:
    """How many processes of the run's task runner (started) share the endpoints' rate limits."""
    if task_runner == "dask":
        return max(1, len(runner.client.scheduler_info(n_workers=-1)["workers"]))
    if task_runner == "ray":
        import ray

        return max(1, math.floor(ray.cluster_resources().get("CPU", 1)))
    return 1
