"""Live progress of a run: pairs done and failed, calls, tokens, cost so far, rate, ETA, projected cost.

`RunProgress` counts (from any thread): pairs as they end, and calls, tokens and cost as each call
returns (from the run's usage log, when the calls are made in this process; on Dask or Ray
workers, as their pairs end); `show_progress` renders it while a run goes: a rich live display in
a terminal, a plain line every few seconds elsewhere (CI, a Prefect worker's log).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from personasim.config import PriceConfig
from personasim.llm.ledger import TALLY
from personasim.pricing import tokens_cost
from personasim.records import Failure, Outcome, Usage


class LiveCounts(Protocol):
    """What the engine of this process counts as it goes (personasim.engine.Engine)."""

    @property
    def spent(self) -> Any: ...  # a UsageLog: by_model() totals

    @property
    def ended(self) -> Any: ...  # a PairTally: done, failed


@dataclass(frozen=True)
class Snapshot:
    total: int
    done: int
    failed: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    elapsed_s: float
    cached_tokens: int = 0
    note: str = ""  # what a batch run waits on: rounds, batches submitted / in progress / done

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def rate(self) -> float:
        """Pairs finished per second."""
        return self.finished / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.finished) / self.rate if self.rate > 0 else None

    @property
    def projected_cost_usd(self) -> float | None:
        """What all pairs will have cost, at the cost per pair so far."""
        return self.cost_usd / self.finished * self.total if self.finished else None

    def line(self) -> str:
        eta = f"{self.eta_s:.0f} s" if self.eta_s is not None else "-"
        projected = f"${self.projected_cost_usd:.4f}" if self.projected_cost_usd is not None else "-"
        cached = f" ({self.cached_tokens:,} cached)" if self.cached_tokens else ""
        note = f" · {self.note}" if self.note else ""
        return (f"{self.finished}/{self.total} pairs ({self.done} done, {self.failed} failed) · {self.calls} calls · "
                f"{self.input_tokens + self.output_tokens:,} tokens{cached} · ${self.cost_usd:.4f} · "
                f"{self.rate:.2f} pairs/s · ETA {eta} · projected {projected}{note}")


class RunProgress:
    """Counts of a run, fed with each outcome (its calls included) as it comes back."""

    def __init__(self, total: int, pricing: Mapping[str, PriceConfig] | None = None,
                 started: float | None = None, live: LiveCounts | None = None) -> None:
        """`started`: when the run's pairs began (time.monotonic()), if before now; `live`: the
        engine of this process, whose usage log has each call the moment it returns and whose
        tally each pair the moment it ends."""
        self.total = total
        self.pricing = pricing or {}
        self.live = live
        self._lock = threading.Lock()
        self._started = time.monotonic() if started is None else started
        self._done = self._failed = self._calls = self._input = self._cached = self._output = 0
        self._cost = 0.0
        self.note: Callable[[], str] | None = None  # a line on what the run waits on (batch mode)

    def add(self, outcomes: Iterable[Outcome], *, paid: bool = True) -> None:
        """Count `outcomes`; `paid=False` for ones whose calls an earlier run made (recovered)."""
        for outcome in outcomes:
            self.add_one(outcome, paid=paid)

    def add_one(self, outcome: Outcome, *, paid: bool = True) -> None:
        usage = outcome.usage if paid else ()
        cost = sum(self._cost_of(u) for u in usage)
        with self._lock:
            if isinstance(outcome, Failure):
                self._failed += 1
            else:
                self._done += 1
            self._calls += len(usage)
            self._input += sum(u.input_tokens for u in usage)
            self._cached += sum(u.cached_tokens for u in usage)
            self._output += sum(u.output_tokens for u in usage)
            self._cost += cost

    def _cost_of(self, usage: Usage) -> float:
        return tokens_cost(usage.model, usage.input_tokens, usage.output_tokens, self.pricing,
                           cached_tokens=usage.cached_tokens, batch=usage.batch)

    def snapshot(self) -> Snapshot:
        """The books of finished pairs (`books`), or, while pairs run here, every call returned so far."""
        books = self.books()
        return books if self.live is None else max(books, self._running(self.live, books), key=lambda s: s.calls)

    def line(self) -> str:
        """The progress line, with what a batch run waits on (asked only here: it reads the journal)."""
        return replace(self.snapshot(), note=self.note() if self.note is not None else "").line()

    def books(self) -> Snapshot:
        """The calls and cost of the pairs that ended: what the run's summary reports."""
        with self._lock:
            return Snapshot(self.total, self._done, self._failed, self._calls, self._input, self._output,
                            round(self._cost, 6), time.monotonic() - self._started, self._cached)

    def _running(self, live: LiveCounts, books: Snapshot) -> Snapshot:
        spent, ended = live.spent, live.ended
        totals = {key: sum(t[key] for t in spent.by_model().values()) for key in TALLY}
        return Snapshot(books.total, max(books.done, ended.done), max(books.failed, ended.failed), totals["calls"],
                        totals["input_tokens"], totals["output_tokens"], round(spent.cost_usd(self.pricing), 6),
                        books.elapsed_s, totals["cached_tokens"])


def _line(out: Any, progress: RunProgress) -> None:
    # written, not printed: a flow with log_prints would send print() to its logger instead
    out.write(f"progress: {progress.line()}\n")
    out.flush()


@contextmanager
def _every(seconds: float, action: Callable[[], None]) -> Iterator[None]:
    """Run `action` every `seconds` in a thread while the block runs, and once more at its end."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            action()

    worker = threading.Thread(target=loop, name="personasim-progress", daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()
        action()


@contextmanager
def show_progress(progress: RunProgress, *, enabled: bool = True, every_s: float = 5.0,
                  stream: Any = None) -> Iterator[RunProgress]:
    """Render `progress` while the block runs: live in a terminal, else a plain line every `every_s`."""
    out: Any = stream or sys.stderr
    if not enabled:
        yield progress
    elif getattr(out, "isatty", lambda: False)():
        from rich.console import Console
        from rich.live import Live

        with Live(console=Console(file=out), refresh_per_second=4) as live, \
                _every(0.25, lambda: live.update(progress.line())):
            yield progress
    else:
        with _every(every_s, lambda: _line(out, progress)):
            yield progress
