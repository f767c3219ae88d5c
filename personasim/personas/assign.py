"""Queries given to personas: `queries_per_persona` each, no query to two personas (unless the pool
runs out and `on_exhausted: reuse` says so, counted), optionally matched on a metadata field.

Personas take their queries in sample order, from a fixed order of the pool (its file order, or
for `random` each query's own seeded rank, which does not move when other queries are added), so
growing the number of personas keeps the earlier personas' queries. Assignments already stored
in the dataset are kept as they are, and their queries count as used.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from personasim.config.personas import QuerySettings
from personasim.errors import ConfigError
from personasim.personas.persona import Persona
from personasim.personas.queries import PoolQuery, QueryPool
from personasim.record_base import Record
from personasim.records import Pair
from personasim.rng import derive_seed


@dataclass(frozen=True)
class Assignment(Record):
    """One query given to one persona: its place among the persona's queries, whether another
    persona has it too (`reused`), and whether it matched the persona (None: no matching asked)."""

    persona_id: str
    query_id: str
    original_query: str
    position: int
    reused: bool = False
    matched: bool | None = None
    target_turns: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def of(cls, persona: Persona, query: PoolQuery, position: int, reused: bool, matched: bool | None) -> Assignment:
        return cls(persona.persona_id, query.query_id, query.text, position, reused, matched, query.target_turns,
                   dict(query.metadata), query.source)

    def pair(self, persona: Persona) -> Pair:
        return Pair(persona_id=persona.persona_id, persona_features=dict(persona.features),
                    original_query=self.original_query, query_id=self.query_id, target_turns=self.target_turns,
                    system_prompt=persona.system_prompt, metadata=dict(self.metadata),
                    source=self.source or f"assignment {self.persona_id}/{self.query_id}")


class _Queue:
    """The pool's queries in assignment order, each handed out once."""

    def __init__(self, indices: Sequence[int], used: set[int]) -> None:
        self._left = deque(indices)
        self._used = used

    def take(self, avoid: set[int]) -> int | None:
        skipped = []
        found = None
        while self._left:
            index = self._left.popleft()
            if index in self._used:
                continue
            if index in avoid:
                skipped.append(index)
                continue
            found = index
            break
        self._left.extendleft(reversed(skipped))
        return found


def assign(personas: Sequence[Persona], pool: QueryPool, settings: QuerySettings, seed: int,
           stored: Sequence[Assignment] = ()) -> list[Assignment]:
    """Every persona's assignments (stored ones first, as they are); raises ConfigError before
    anything is paid for when the pool runs out and reusing is not allowed."""
    queries = pool.queries
    position_of = {q.query_id: i for i, q in enumerate(queries)}
    order = list(range(len(queries)))
    if settings.selection == "random":
        order.sort(key=lambda i: derive_seed(seed, "query", queries[i].query_id))
    mine: dict[str, list[Assignment]] = {}
    for assignment in sorted(stored, key=lambda a: a.position):
        mine.setdefault(assignment.persona_id, []).append(assignment)
    used = {position_of[a.query_id] for a in stored if a.query_id in position_of}
    wanted = sum(max(0, settings.queries_per_persona - len(mine.get(p.persona_id, ()))) for p in personas)
    free = len(queries) - len(used)
    if wanted > free and settings.on_exhausted == "error":
        raise ConfigError(f"queries: the pool holds {free:,} unused queries for {wanted:,} assignments "
                          f"({len(personas):,} personas x {settings.queries_per_persona}); add queries, lower "
                          "queries_per_persona, or set queries.on_exhausted: reuse")
    general = _Queue(order, used)
    by_value: dict[str, _Queue] = {}
    match = settings.match
    if match is not None:
        groups: dict[str, list[int]] = {}
        for ranked in order:
            value = queries[ranked].metadata.get(match.metadata)
            if value is not None:
                groups.setdefault(str(value).casefold(), []).append(ranked)
        by_value = {value: _Queue(indices, used) for value, indices in groups.items()}
    uses = [0] * len(queries)
    for spent in used:
        uses[spent] += 1
    reuse: list[tuple[int, int, int]] = []  # (uses, rank, index): the least used first, once the pool is spent
    out: list[Assignment] = []
    for persona in personas:
        have = mine.get(persona.persona_id, [])[:settings.queries_per_persona]
        out.extend(have)
        taken = {position_of[a.query_id] for a in have if a.query_id in position_of}
        wish = persona.features.get(match.dimension) if match is not None else None
        preferred = by_value.get(str(wish).casefold()) if wish is not None else None
        for position in range(len(have), settings.queries_per_persona):
            index = preferred.take(taken) if preferred is not None else None
            matched = None if match is None else index is not None
            if index is None:
                index = general.take(taken)
            reused = index is None
            if index is None:
                if not reuse:
                    reuse = [(uses[i], rank, i) for rank, i in enumerate(order)]
                    heapq.heapify(reuse)
                index = _least_used(reuse, taken, uses)
                if index is None:
                    raise ConfigError(f"queries: the pool holds {len(queries)} queries, fewer than "
                                      f"queries_per_persona ({settings.queries_per_persona})")
            used.add(index)
            uses[index] += 1
            taken.add(index)
            query = queries[index]
            if matched is False and match is not None and wish is not None:
                matched = str(query.metadata.get(match.metadata, "")).casefold() == str(wish).casefold()
            out.append(Assignment.of(persona, query, position, reused, matched))
    return out


def _least_used(heap: list[tuple[int, int, int]], avoid: set[int], uses: list[int]) -> int | None:
    """The least used query not in `avoid` (the heap's counts are brought up to date as met)."""
    put_back = []
    found = None
    while heap:
        count, rank, index = heapq.heappop(heap)
        if count != uses[index]:
            heapq.heappush(heap, (uses[index], rank, index))
            continue
        if index in avoid:
            put_back.append((count, rank, index))
            continue
        found = index
        heapq.heappush(heap, (count + 1, rank, index))
        break
    for item in put_back:
        heapq.heappush(heap, item)
    return found


def assignment_summary(assignments: Sequence[Assignment], pool: QueryPool | None) -> dict[str, Any]:
    """What the assignment did: queries per persona, reuse, matches, and what the pool dropped."""
    per_persona: dict[str, int] = {}
    for a in assignments:
        per_persona[a.persona_id] = per_persona.get(a.persona_id, 0) + 1
    matched = [a.matched for a in assignments if a.matched is not None]
    counts = sorted(per_persona.values())
    return {
        "assignments": len(assignments), "personas": len(per_persona),
        "queries_per_persona": {"min": counts[0], "max": counts[-1]} if counts else {"min": 0, "max": 0},
        "distinct_queries": len({a.query_id for a in assignments}),
        "reused_assignments": sum(1 for a in assignments if a.reused),
        **({"matched": sum(matched), "unmatched": len(matched) - sum(matched)} if matched else {}),
        **({"pool": pool.summary()} if pool is not None else {}),
    }
