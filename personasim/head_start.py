"""A run opened before its flow: a command-line run's pairs in flight while Prefect's API boots.

Prefect's embedded API answers seconds after it is spawned (its imports alone take 2-3 s on two
cores) and the command imports Prefect meanwhile; the first call used to wait for both. The
command instead opens the run as the flow would (run id, dataset lock, the same prepare and
triage, the same engine) and starts its pairs at once; the flow, run in the same process with the
same parameters, claims the open run, and its tasks join the pairs in flight, whose outcomes are
committed in waves as usual. Nothing is done twice: the engine joins a started pair rather than
start it again, and a pair done before the flow asked for it is stored, so a command that never
reaches the flow (Ctrl-C, an API that did not start) leaves it for the next run to recover.

Plain Python: this runs before Prefect is imported.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from personasim.config import with_worker_share
from personasim.dataset import Dataset
from personasim.flows.parameters import RunParameters
from personasim.interrupt import GRACE_S
from personasim.records import Pair
from personasim.run_handle import RunHandle, new_run_id


@dataclass
class OpenRun:
    """A run with its id, its dataset's lock held (`lock`, closed when the run ends) and its engine."""

    params: RunParameters
    run: RunHandle
    started: datetime
    clock: float  # time.monotonic() when it was opened: the run's elapsed time counts from here
    workers: int  # processes that share the endpoints' limits and the budget
    budget_usd: float | None  # the whole run's; each of `workers` processes gets its share
    lock: ExitStack
    owner: Literal["command", "flow", "nobody"] = "command"  # a flow closes a run it claimed

    @classmethod
    def open(cls, params: RunParameters, workers: int) -> OpenRun:
        """Take the dataset's lock (a second writer is refused, naming the holder) and make the handle."""
        config = with_worker_share(params.config(), workers)
        budget = params.max_cost if params.max_cost is not None else config.budget.max_cost_usd
        started = datetime.now(timezone.utc)
        run = RunHandle(new_run_id(params.run_name, started), config, params.dataset_root,
                        -(-params.max_concurrency // workers), None if budget is None else budget / workers)
        lock = ExitStack()
        lock.enter_context(Dataset(params.dataset_root).lock())
        return cls(params, run, started, time.monotonic(), workers, budget, lock)

    def close(self) -> None:
        """The run's engine stops (pairs nobody joined are dropped, those begun are stored) and the
        dataset's lock goes."""
        try:
            self.run.close()
        finally:
            self.lock.close()


_waiting: dict[str, OpenRun] = {}  # by dataset root: opened by `begin`, not yet claimed by a flow
_waiting_lock = threading.Lock()


def begin(params: RunParameters, pairs: list[Pair]) -> OpenRun | None:
    """Open the run `params` describe and put its pairs in flight, for the flow to claim. Only with
    the thread runner (a Dask or Ray run's engines live in its workers) and ready pairs (pairs made
    from personas wait for their system prompts, written by the flow's tasks)."""
    if params.task_runner != "thread" or params.input_path is None:  # personas: planned by the flow's tasks
        return None
    if params.batch_run(params.config()):  # its pairs go out in rounds, through batch APIs
        return None
    opened = OpenRun.open(params, workers=1)
    try:
        triage = opened.run.prepare(pairs, params.new_variant)
        opened.run.engine.start(triage.todo)
    except BaseException:
        opened.close()
        raise
    with _waiting_lock:
        _waiting[params.dataset_root] = opened
    return opened


def claim(params: RunParameters) -> OpenRun | None:
    """The run `begin` opened for these parameters, now the caller's to close; None when there is
    none (a deployment run, the library) or it was opened for other parameters (it is closed)."""
    with _waiting_lock:
        opened = _waiting.pop(params.dataset_root, None)
        if opened is not None and opened.params == params:
            opened.owner = "flow"
            return opened
    if opened is not None:
        abandon(opened)
    return None


def abandon(opened: OpenRun) -> int:
    """Close a run no flow claimed: no new pair starts, pairs in flight get GRACE_S seconds to finish
    (what they cost is not thrown away), then are cut short. Returns how many pairs are done and
    stored, for the next run to write without a call. A claimed run is left to its flow."""
    with _waiting_lock:
        if opened.owner != "command":
            return 0
        opened.owner = "nobody"
        if _waiting.get(opened.params.dataset_root) is opened:
            del _waiting[opened.params.dataset_root]
    try:
        opened.run.stop("interrupted")
        return opened.run.engine.settle(GRACE_S)
    finally:
        opened.run.abort()
        opened.close()
