"""A query pool: seed queries from JSONL, JSON, CSV or Parquet files, exact and near duplicates
dropped (and counted), at most `max_queries` kept.

Rows may be plain strings, personasim's query objects (`original_query`, `query_id`, `metadata`,
`target_turns`), PersonaGym's documented `{"text", "metadata"}`, PersonaGym's query files as its
code reads them (the text in the first of `instruction`, `query`, `question`, `prompt`, `text`,
`input`; the rest of the row is the metadata; the id `<dataset>:<source_id>`), or PersonaGym's
generated query objects (`inferred_domain`, `inferred_scenario`, `was_style_transferred`: kept in
the metadata; a rewrite made for another persona is not reused as this one's).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personasim.config.personas import QuerySettings
from personasim.errors import InputError
from personasim.inputs import input_files, read_records
from personasim.pairs import MAX_QUERY_CHARS

TEXT_FIELDS = ("original_query", "instruction", "query", "question", "prompt", "text", "input")
ID_FIELDS = ("query_id", "id", "source_id", "uid", "uuid", "qid")
_TOKEN = re.compile(r"\w+|[^\w\s]")  # words and each symbol: `a += b` and `a -= b` are two queries


@dataclass(frozen=True)
class PoolQuery:
    query_id: str
    text: str
    source: str  # "file: row N", for errors and the pair's source
    metadata: Mapping[str, Any] = field(default_factory=dict)
    target_turns: int | None = None


@dataclass
class QueryPool:
    """The queries kept, and what was dropped on the way, counted."""

    queries: list[PoolQuery]
    rows: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    over_max: int = 0

    def summary(self) -> dict[str, int]:
        return {"rows": self.rows, "kept": len(self.queries), "exact_duplicates": self.exact_duplicates,
                "near_duplicates": self.near_duplicates, "over_max_queries": self.over_max}


def text_key(text: str) -> str:
    """What two queries share when they are the same query: their words and symbols, case,
    spacing, repeated marks and the closing `?`, `.` or `!` aside."""
    tokens = _TOKEN.findall(text.casefold())
    kept = [t for i, t in enumerate(tokens) if not (i and t == tokens[i - 1] and not t[0].isalnum())]
    while kept and kept[-1] in "?.!":
        kept.pop()
    return " ".join(kept)


def _query(record: Any, where: str, origin: str) -> PoolQuery:
    """One row as a query, or InputError naming the row and field."""
    if isinstance(record, str):
        record = {"text": record}
    if not isinstance(record, Mapping):
        raise InputError(f"{where}: expected a query (a text or an object), got {type(record).__name__}")
    if isinstance(record.get("conversations"), list) and record["conversations"]:  # ShareGPT rows
        first = record["conversations"][0]
        record = {**record, "text": first.get("value") if isinstance(first, Mapping) else None}
    name = next((f for f in TEXT_FIELDS if isinstance(record.get(f), str) and record[f].strip()), None)
    if name is None:
        raise InputError(f"{where}: field original_query: missing (a query row needs one of {', '.join(TEXT_FIELDS)})")
    text = record[name]
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(f"{where}: field {name}: has {len(text):,} characters (at most {MAX_QUERY_CHARS:,})")
    given = record.get("metadata")
    if given is not None and not isinstance(given, Mapping):
        raise InputError(f"{where}: field metadata: must be an object")
    rest = {k: v for k, v in record.items() if k not in (name, "metadata", "adapted_query", "conversations")}
    metadata = {**rest, **(given or {})}
    turns = record.get("target_turns")
    if turns is not None and (not isinstance(turns, int) or isinstance(turns, bool) or not 2 <= turns <= 5):
        raise InputError(f"{where}: field target_turns: must be a whole number from 2 to 5, got {turns!r}")
    return PoolQuery(_query_id(record, text, origin), text, where, metadata, turns)


def _query_id(record: Mapping[str, Any], text: str, origin: str) -> str:
    """The row's id: `query_id` as given; PersonaGym's `<dataset>:<id>`; else a hash of the text."""
    if isinstance(record.get("query_id"), str) and record["query_id"].strip():
        return str(record["query_id"])
    local = next((record[f] for f in ID_FIELDS[1:] if record.get(f) not in (None, "")), None)
    if local is not None:
        prefix = record.get("dataset") or record.get("source") or Path(origin).stem
        return f"{prefix}:{local}"
    return "q" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_queries(paths: Iterable[str]) -> Iterator[PoolQuery]:
    for path in paths:
        for file in input_files(path):
            for where, record in _rows(file):
                yield _query(record, where, str(file))


def _rows(file: Path) -> Iterator[tuple[str, Any]]:
    """A file's rows; PersonaGym's JSON query files wrap theirs in `{"queries": [...]}`."""
    if file.suffix.lower() == ".json":
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{file}: not a readable JSON file ({exc})") from None
        if isinstance(data, Mapping) and isinstance(data.get("queries"), list):
            yield from ((f"{file}: row {n}", row) for n, row in enumerate(data["queries"], 1))
            return
    yield from read_records(file)


class _NearDuplicates:
    """Word 3-gram MinHash with LSH for candidates, each confirmed by the exact Jaccard of the
    3-gram sets, so nothing is dropped on an estimate."""

    def __init__(self, threshold: float) -> None:
        from datasketch import MinHash, MinHashLSH

        self.threshold = threshold
        self._minhash = MinHash
        self._lsh = MinHashLSH(threshold=min(threshold, 0.99), num_perm=64)
        first = MinHash(num_perm=64)
        self._permutations, self._scheme = first.permutations, first.scheme
        self._grams: dict[str, set[bytes]] = {}

    @staticmethod
    def grams(text: str) -> set[bytes]:
        words = _TOKEN.findall(text.casefold())
        n = 3 if len(words) >= 3 else 1
        return {" ".join(words[i:i + n]).encode() for i in range(max(1, len(words) - n + 1))}

    def seen(self, key: str, text: str) -> bool:
        """Whether `text` is a near duplicate of one kept before; if not, it is kept."""
        grams = self.grams(text)
        sketch = self._minhash(num_perm=64, permutations=self._permutations, scheme=self._scheme)
        sketch.update_batch(list(grams))
        for other in self._lsh.query(sketch):
            kept = self._grams[other]
            if len(grams & kept) / len(grams | kept) >= self.threshold:
                return True
        self._lsh.insert(key, sketch)
        self._grams[key] = grams
        return False


def load_pool(settings: QuerySettings, paths: Iterable[str] | None = None) -> QueryPool:
    """The pool the settings name (or `paths`), deduplicated, in file order. Ids must be unique:
    the same id with another text is an error naming both rows."""
    files = list(paths if paths is not None else settings.pool)
    if not files:
        raise InputError("queries: no query pool given (--queries FILE, or queries.pool in the config)")
    pool = QueryPool([])
    by_id: dict[str, PoolQuery] = {}
    texts: set[str] = set()
    near = _NearDuplicates(settings.near_duplicate_threshold) if settings.near_duplicate_threshold < 1.0 else None
    for query in read_queries(files):
        pool.rows += 1
        if settings.max_queries is not None and len(pool.queries) >= settings.max_queries:
            pool.over_max += 1  # rows past max_queries are not looked at
            continue
        earlier = by_id.get(query.query_id)
        key = text_key(query.text)
        if earlier is not None and text_key(earlier.text) != key:
            raise InputError(f"{query.source}: field query_id: {query.query_id!r} is already at {earlier.source} "
                             "with another text")
        if earlier is not None or key in texts:
            pool.exact_duplicates += 1
            continue
        if near is not None and near.seen(query.query_id, query.text):
            pool.near_duplicates += 1
            continue
        by_id[query.query_id] = query
        texts.add(key)
        pool.queries.append(query)
    if not pool.queries:
        raise InputError(f"{', '.join(files)}: no queries in the pool")
    return pool
