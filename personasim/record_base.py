"""What every record shares: JSON-ready views, reading the fields a dict names, the time stamp."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import datetime, timezone
from typing import Any, Protocol


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def plain(value: Any) -> Any:
    """A record as JSON-ready values: records to dicts, tuples to lists, mappings to dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


class Record:
    """A record's `to_dict`: its fields as JSON-ready values."""

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


def known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: data[f.name] for f in fields(cls) if f.name in data}


def metadata_facts(metadata: Mapping[str, Any] | None, known: Iterable[str], derived: Iterable[str],
           what: str) -> dict[str, Any]:
    """The reference API's metadata dict, as the typed fields it names; a key with no field is an error."""
    facts = dict(metadata or {})
    known, derived = list(known), list(derived)
    unknown = sorted(set(facts) - set(known) - set(derived))
    if unknown:
        raise ValueError(f"{what} metadata key {unknown[0]!r} has no field; known: {', '.join(known)}")
    return {k: v for k, v in facts.items() if k in known}


class Tokens(Protocol):
    @property
    def input_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...


def usage_totals(records: Iterable[Tokens]) -> dict[str, int]:
    """Calls and tokens of some usage records."""
    totals = {"calls": 0, "input_tokens": 0, "output_tokens": 0}
    for rec in records:
        totals["calls"] += 1
        totals["input_tokens"] += rec.input_tokens
        totals["output_tokens"] += rec.output_tokens
    return totals
