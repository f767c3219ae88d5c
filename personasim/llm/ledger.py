"""Where usage goes: a pair's own ledger, filled by the client as calls return, and the run's log.

The ledger is passed to every call explicitly, so what a pair paid for travels with the record
it paid for (an interaction, or a failure) and nothing is attributed through hidden state. Each
call also reaches the run's `UsageLog` the moment it returns: what was spent, whatever becomes of
the pair.
"""

from __future__ import annotations

import threading
from typing import Protocol

from personasim.records import Usage, Violation


class SpendSink(Protocol):
    """Somewhere durable for every call paid for (the dataset's spend log)."""

    def write(self, usage: Usage) -> None: ...


class UsageLog:
    """Every call a run made, from any thread: running totals by model, the records when `keep`,
    and each call handed to `sink` as it returns."""

    def __init__(self, keep: bool = True, sink: SpendSink | None = None) -> None:
        self.keep = keep
        self.sink = sink
        self._lock = threading.Lock()
        self._records: list[Usage] = []
        self._by_model: dict[str, dict[str, int]] = {}

    def add(self, usage: Usage) -> None:
        if self.sink is not None:
            self.sink.write(usage)
        with self._lock:
            totals = self._by_model.setdefault(usage.model, {"calls": 0, "input_tokens": 0, "output_tokens": 0})
            totals["calls"] += 1
            totals["input_tokens"] += usage.input_tokens
            totals["output_tokens"] += usage.output_tokens
            if self.keep:
                self._records.append(usage)

    def records(self) -> list[Usage]:
        with self._lock:
            return list(self._records)

    def by_model(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {model: dict(totals) for model, totals in self._by_model.items()}


class Ledger:
    """What one pair (or one reference-API call) met on its way: the calls it paid for and the
    replies that broke their role's contract, in order. One thread writes it."""

    __slots__ = ("interaction_id", "persona_id", "usage", "violations", "log")

    def __init__(self, interaction_id: str | None = None, log: UsageLog | None = None,
                 persona_id: str | None = None) -> None:
        self.interaction_id = interaction_id
        self.persona_id = persona_id
        self.usage: list[Usage] = []
        self.violations: list[Violation] = []
        self.log = log

    def add(self, usage: Usage) -> None:
        self.usage.append(usage)
        if self.log is not None:
            self.log.add(usage)
