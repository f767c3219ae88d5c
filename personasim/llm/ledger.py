"""Where usage goes: a pair's own ledger, filled by the client as calls return, and the run's log.

The ledger is passed to every call explicitly, so what a pair paid for travels with the record
it paid for (an interaction, or a failure) and nothing is attributed through hidden state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from personasim.records import Usage


class Ledger:
    """The calls made for one pair (or one reference-API call), in order. One thread writes it."""

    __slots__ = ("interaction_id", "usage")

    def __init__(self, interaction_id: str | None = None) -> None:
        self.interaction_id = interaction_id
        self.usage: list[Usage] = []


class UsageLog:
    """Every call a run made, from any thread: what the run spent, failed pairs included."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Usage] = []

    def extend(self, records: Iterable[Usage]) -> None:
        with self._lock:
            self._records.extend(records)

    def records(self) -> list[Usage]:
        with self._lock:
            return list(self._records)
