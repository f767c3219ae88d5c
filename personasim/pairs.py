"""Personas, queries and the pairs built from them, validated with errors that name row and field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from personasim.errors import InputError
from personasim.records import Pair

MAX_QUERY_CHARS = 20_000
MAX_ID_CHARS = 200
_BAD_ID = re.compile(r"[\x00-\x1f\x7f/\\]")


def _check_id(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise ValueError(f"{what} is empty")
    if len(value) > MAX_ID_CHARS:
        raise ValueError(f"{what} is longer than {MAX_ID_CHARS} characters")
    if _BAD_ID.search(value) or ".." in value or value in {".", ".."}:
        raise ValueError(f"{what} contains '/', '\\', '..' or a control character")
    return value


def _check_text(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} is empty")
    if len(value) > MAX_QUERY_CHARS:
        raise ValueError(f"{what} has {len(value):,} characters (at most {MAX_QUERY_CHARS:,})")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class QueryInput(_Strict):
    original_query: str
    adapted_query: str | None = None
    query_id: str | None = None
    target_turns: int | None = Field(None, ge=2, le=5)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("original_query")
    @classmethod
    def _original(cls, v: str) -> str:
        return _check_text(v, "original_query")

    @field_validator("adapted_query")
    @classmethod
    def _adapted(cls, v: str | None) -> str | None:
        return None if v is None else _check_text(v, "adapted_query")

    @field_validator("query_id")
    @classmethod
    def _qid(cls, v: str | None) -> str | None:
        return _check_id(v, "query_id")


class PersonaInput(_Strict):
    persona_id: str
    persona_features: dict[str, str] = Field(min_length=1)
    system_prompt: str | None = None

    @field_validator("persona_id")
    @classmethod
    def _pid(cls, v: str) -> str:
        _check_id(v, "persona_id")
        return v


class PairInput(PersonaInput, QueryInput):
    """One row per pair."""


# PersonaGym's generated query objects carry what its pipeline inferred: kept as the pair's metadata
PERSONAGYM_QUERY_FIELDS = ("inferred_domain", "inferred_scenario", "style_transferred", "was_style_transferred",
                           "target_length", "prompt_type", "source_dataset")


def describe_error(exc: ValidationError, where: str) -> InputError:
    """A validation error as one line naming the row and the field."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(row)"
    msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
    if err["type"] == "missing":
        msg = "missing"
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return InputError(f"{where}: field {loc}: {msg}{more}")


def _pair_from(persona: PersonaInput, query: QueryInput, source: str) -> Pair:
    return Pair(persona_id=persona.persona_id, persona_features=dict(persona.persona_features),
                original_query=query.original_query, adapted_query=query.adapted_query,
                query_id=query.query_id, target_turns=query.target_turns, system_prompt=persona.system_prompt,
                metadata=dict(query.metadata), source=source)


def _query_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """A query object with PersonaGym's inferred fields moved into its metadata."""
    given = dict(record)
    inferred = {k: given.pop(k) for k in PERSONAGYM_QUERY_FIELDS if k in given}
    if inferred:
        given["metadata"] = {**inferred, **(given.get("metadata") or {})}
    return given


def persona_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """A persona row with PersonaGym's names: `features` for persona_features (its YAML makes a value
    such as 18_24 the number 1824, so there a number is read as its text; personasim's own
    `persona_features` must be text)."""
    given = dict(record)
    if "features" in given and "persona_features" not in given:
        features = given.pop("features")
        given["persona_features"] = ({str(k): str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                                      for k, v in features.items()} if isinstance(features, Mapping) else features)
    return given


def pairs_from_record(record: Any, where: str) -> list[Pair]:
    """The pairs in one input row: a pair, or a persona with `queries` (the reference API's shape,
    and PersonaGym's persona files with their query objects)."""
    if not isinstance(record, Mapping):
        raise InputError(f"{where}: expected an object, got {type(record).__name__}")
    record = persona_fields(record)
    try:
        if "queries" not in record:
            row = PairInput.model_validate(_query_fields(record))
            return [_pair_from(row, row, where)]
        persona_metadata = record.get("metadata")
        persona = PersonaInput.model_validate({k: v for k, v in record.items() if k not in ("queries", "metadata")})
    except ValidationError as exc:
        raise describe_error(exc, where) from None
    if persona_metadata is not None and not isinstance(persona_metadata, Mapping):
        raise InputError(f"{where}: field metadata: must be an object")
    queries = record["queries"]
    if not isinstance(queries, list) or not queries:
        raise InputError(f"{where}: field queries: must be a non-empty list of queries")
    pairs = []
    for i, item in enumerate(queries):
        at = f"{where} queries[{i}]"
        try:
            query = QueryInput.model_validate({"original_query": item} if isinstance(item, str) else
                                              _query_fields(item) if isinstance(item, Mapping) else item)
        except ValidationError as exc:
            raise describe_error(exc, at) from None
        pair = _pair_from(persona, query, at)
        if persona_metadata:
            pair = replace(pair, metadata={**pair.metadata, "persona": dict(persona_metadata)})
        pairs.append(pair)
    return pairs


def _file_of(source: str) -> str:
    return source.rsplit(": row ", 1)[0]


def expand_pairs(records: Iterable[tuple[str, Any]]) -> list[Pair]:
    """Validate (where, record) items into pairs.

    The same pair repeated in another file (a copied input with new rows added) is read once; a
    pair id repeated within a file, or with different content anywhere, is an error naming both rows.
    """
    pairs: list[Pair] = []
    seen: dict[tuple[str, str], Pair] = {}
    for where, record in records:
        for pair in pairs_from_record(record, where):
            key = (pair.persona_id, pair.query_key)
            first = seen.get(key)
            if first is None:
                seen[key] = pair
                pairs.append(pair)
                continue
            same = replace(first, source="") == replace(pair, source="")
            if same and _file_of(first.source) != _file_of(pair.source):
                continue
            what = f"query_id {pair.query_id!r}" if pair.query_id else "the same original_query"
            conflict = "duplicate pair" if same else "conflicting pair (same ids, different content)"
            raise InputError(f"{pair.source}: field query_id: {conflict}: persona_id {pair.persona_id!r} "
                             f"with {what} already at {first.source}")
    return pairs
