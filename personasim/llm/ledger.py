"""Where usage goes: a pair's own ledger, filled by the client as calls return, and the run's log.

The ledger is passed to every call explicitly, so what a pair paid for travels with the record
it paid for (an interaction, or a failure) and nothing is attributed through hidden state. Each
call also reaches the run's `UsageLog` the moment it returns: what was spent, whatever becomes of
the pair.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from personasim.config import PriceConfig
from personasim.pricing import group_cost
from personasim.records import Usage, Violation


class SpendSink(Protocol):
    """Somewhere durable for every call paid for (the dataset's spend log)."""

    def write(self, usage: Usage) -> None: ...


TALLY = ("calls", "input_tokens", "cached_tokens", "output_tokens")


class UsageLog:
    """Every call a run made, from any thread: running totals by model and by batch or online (the
    two are priced apart), the records when `keep`, and each call handed to `sink` as it returns."""

    def __init__(self, keep: bool = True, sink: SpendSink | None = None) -> None:
        self.keep = keep
        self.sink = sink
        self._lock = threading.Lock()
        self._records: list[Usage] = []
        self._groups: dict[tuple[str, bool], dict[str, int]] = {}

    def add(self, usage: Usage) -> None:
        if self.sink is not None:
            self.sink.write(usage)
        with self._lock:
            totals = self._groups.setdefault((usage.model, usage.batch), dict.fromkeys(TALLY, 0))
            totals["calls"] += 1
            totals["input_tokens"] += usage.input_tokens
            totals["cached_tokens"] += usage.cached_tokens
            totals["output_tokens"] += usage.output_tokens
            if self.keep:
                self._records.append(usage)

    def records(self) -> list[Usage]:
        with self._lock:
            return list(self._records)

    def groups(self) -> list[dict[str, Any]]:
        """Totals per (model, batch): what `personasim.pricing.estimate_cost` prices."""
        with self._lock:
            return [{"model": model, "batch": batch, **totals} for (model, batch), totals in self._groups.items()]

    def by_model(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for group in self.groups():
            totals = out.setdefault(group["model"], dict.fromkeys(TALLY, 0))
            for key in TALLY:
                totals[key] += group[key]
        return out

    def cost_usd(self, pricing: Mapping[str, PriceConfig]) -> float:
        return sum(group_cost(g, pricing) for g in self.groups())


class Replay(Protocol):
    """A pair's calls answered from a batch run's journal (personasim.batch.replay.PairReplay)."""

    def answer(self, client: Any, prompt: Any, spec: Any, call: Callable[[], tuple[Any, float]]) -> tuple[Any, float]:
        ...


class Ledger:
    """What one pair (or one reference-API call) met on its way: the calls it paid for and the
    replies that broke their role's contract, in order. One thread writes it. A pair replayed in a
    batch run carries its `replay`: its calls were paid for (and logged) when their replies came."""

    __slots__ = ("interaction_id", "persona_id", "usage", "violations", "log", "replay")

    def __init__(self, interaction_id: str | None = None, log: UsageLog | None = None,
                 persona_id: str | None = None, replay: Replay | None = None) -> None:
        self.interaction_id = interaction_id
        self.persona_id = persona_id
        self.usage: list[Usage] = []
        self.violations: list[Violation] = []
        self.log = log
        self.replay = replay

    def add(self, usage: Usage) -> None:
        self.usage.append(usage)
        if self.log is not None:
            self.log.add(usage)
