"""The persona tables of a dataset read back: `personas` (with each one's system prompt) and
`assignments`, and the personas whose prompt was stored but not yet written to the table."""

from __future__ import annotations

from personasim.dataset.persona_store import PersonaStore
from personasim.dataset.rows import stored_assignment, stored_persona
from personasim.dataset.store import Dataset
from personasim.personas import Assignment, Persona


def stored_personas(dataset: Dataset) -> tuple[dict[str, Persona], set[str]]:
    """Every persona the dataset has (the table, then the store for what no wave wrote yet), and
    the ids of those in the table."""
    personas: dict[str, Persona] = {}
    for batch in dataset.batches("personas"):
        for row in batch.to_pylist():
            personas.setdefault(row["persona_id"], stored_persona(row))
    in_table = set(personas)
    store = PersonaStore(dataset)
    for persona_id in store.ids() - in_table:
        personas[persona_id] = store.load(persona_id)
    return personas, in_table


def stored_assignments(dataset: Dataset) -> list[Assignment]:
    seen: set[tuple[str, str]] = set()
    out = []
    for batch in dataset.batches("assignments"):
        for row in batch.to_pylist():
            key = (row["persona_id"], row["query_id"])
            if key not in seen:
                seen.add(key)
                out.append(stored_assignment(row))
    return out
