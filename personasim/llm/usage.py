"""Token usage: one record per LLM call that returned, attributable to module, operation and model."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone


@dataclass(frozen=True)
class UsageRecord:
    module: str
    operation: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    interaction_id: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Scope:
    interaction_id: str
    records: list[UsageRecord] = field(default_factory=list)


_current_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("personasim_usage_scope", default=None)


@contextmanager
def usage_scope(interaction_id: str) -> Iterator[list[UsageRecord]]:
    """Attribute every call made in this block (this thread/context) to one interaction.

    Yields the list that collects the block's records, so the interaction can carry its own totals.
    A nested scope for the same interaction shares the outer list.
    """
    outer = _current_scope.get()
    if outer is not None and outer.interaction_id == interaction_id:
        yield outer.records
        return
    scope = _Scope(interaction_id)
    token = _current_scope.set(scope)
    try:
        yield scope.records
    finally:
        _current_scope.reset(token)


class UsageTracker:
    """Thread-safe collector of usage records for a run.

    With `retain=False` records only reach the open usage scopes: the pipeline carries each
    pair's records with its task results (workers may be other processes), so a long-lived
    worker keeps nothing.
    """

    def __init__(self, retain: bool = True) -> None:
        self.retain = retain
        self._lock = threading.Lock()
        self._records: list[UsageRecord] = []

    def record(self, *, module: str, operation: str, model: str, provider: str, input_tokens: int,
               output_tokens: int, latency_s: float) -> UsageRecord:
        scope = _current_scope.get()
        rec = UsageRecord(module, operation, model, provider, input_tokens, output_tokens, round(latency_s, 6),
                          scope.interaction_id if scope else None)
        if scope is not None:
            scope.records.append(rec)
        if self.retain:
            with self._lock:
                self._records.append(rec)
        return rec

    def records(self) -> list[UsageRecord]:
        with self._lock:
            return list(self._records)


def usage_totals(records: Iterable[UsageRecord]) -> dict[str, int]:
    """Calls and tokens of some records."""
    totals = {"calls": 0, "input_tokens": 0, "output_tokens": 0}
    for rec in records:
        totals["calls"] += 1
        totals["input_tokens"] += rec.input_tokens
        totals["output_tokens"] += rec.output_tokens
    return totals


def usage_by(records: Iterable[UsageRecord], key: Callable[[UsageRecord], str]) -> dict[str, dict[str, int]]:
    """Calls and tokens grouped by `key` (e.g. the model)."""
    groups: dict[str, list[UsageRecord]] = {}
    for rec in records:
        groups.setdefault(key(rec), []).append(rec)
    return {name: usage_totals(group) for name, group in groups.items()}
