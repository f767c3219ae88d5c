"""A run's personas and their queries, planned before any call: stored personas and assignments
kept as they are, the rest sampled (or read) and assigned; which personas still need a system
prompt, and which must still be written to the dataset's tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from personasim.personas.assign import Assignment, assign, assignment_summary
from personasim.personas.bank import load_bank
from personasim.personas.persona import Formulated, FormulationFailure, Persona
from personasim.personas.queries import QueryPool
from personasim.personas.source import PersonaSource
from personasim.personas.stats import targets
from personasim.records import Failure, Pair


@dataclass
class PersonaPlan:
    personas: list[Persona]
    assignments: list[Assignment]
    new_assignments: list[Assignment]
    in_table: set[str]  # personas already in the dataset's `personas` table
    pool: QueryPool | None = None
    formulate: bool = True
    failed: dict[str, FormulationFailure] = field(default_factory=dict)

    @property
    def by_id(self) -> dict[str, Persona]:
        return {p.persona_id: p for p in self.personas}

    def pairs(self, limit: int | None = None) -> list[Pair]:
        """The run's pairs, in persona order (their system prompts as far as known)."""
        personas = self.by_id
        pairs = [a.pair(personas[a.persona_id]) for a in self.assignments if a.persona_id in personas]
        return pairs[:limit] if limit else pairs

    def needing_prompts(self, pairs: Iterable[Pair]) -> list[Persona]:
        """The personas of `pairs` without a system prompt yet, once each, in order."""
        wanted = {p.persona_id for p in pairs}
        return [p for p in self.personas if p.persona_id in wanted and not p.has_prompt and self.formulate]

    def add(self, formulated: Sequence[Formulated]) -> None:
        """Formulated personas (or failed ones) into the plan."""
        done = {f.persona_id: f for f in formulated if isinstance(f, Persona)}
        self.failed.update({f.persona.persona_id: f for f in formulated if isinstance(f, FormulationFailure)})
        self.personas = [done.get(p.persona_id, p) for p in self.personas]

    def to_write(self) -> list[Persona]:
        """Personas to add to the `personas` table: with a prompt (or none asked for), not there yet."""
        return [p if p.has_prompt else replace(p, prompt_source="none") for p in self.personas
                if p.persona_id not in self.in_table and p.persona_id not in self.failed
                and (p.has_prompt or not self.formulate)]

    def ready(self, pairs: Sequence[Pair], interaction_id: Callable[[Pair], str]) -> tuple[list[Pair], list[Failure]]:
        """`pairs` with their personas' system prompts, and a failure for each pair whose persona's
        prompt could not be written (its calls counted once, on the persona's first failed pair).
        A pair whose persona's prompt was not asked for (the run stopped first) is in neither."""
        personas, ready, failures, charged = self.by_id, [], [], set()
        for pair in pairs:
            failed = self.failed.get(pair.persona_id)
            if failed is None:
                persona = personas.get(pair.persona_id)
                if persona is not None and self.formulate and not persona.has_prompt:
                    continue  # its prompt was never written (the run stopped first): not started
                ready.append(replace(pair, system_prompt=persona.system_prompt if persona else None))
                continue
            usage = () if pair.persona_id in charged else failed.usage
            charged.add(pair.persona_id)
            failures.append(Failure(interaction_id(pair), pair.persona_id, pair.query_id, pair.original_query,
                                    pair.source, "formulation", f"the persona's system prompt: {failed.reason}", 1,
                                    failed.permanent, usage))
        return ready, failures

    def summary(self, source: PersonaSource | None = None) -> dict[str, Any]:
        """What the plan did, and (with its source) what the personas were sampled against: the
        dataset keeps it as `personas.json`, for its statistics."""
        out: dict[str, Any] = {"assignment": assignment_summary(self.assignments, self.pool)}
        if source is not None:
            sampling = source.sampling
            out["sampling"] = {"from_file": sampling.source, "bank": sampling.bank or "default",
                               "strategy": sampling.strategy, "min_hamming_distance": sampling.min_hamming_distance}
            if not sampling.source:
                bank = load_bank(sampling.bank)
                out["sampling"]["bank_fingerprint"] = bank.fingerprint()
                out["targets"] = targets(bank, sampling)
        return out


def plan_personas(source: PersonaSource, seed: int, stored: Mapping[str, Persona], in_table: set[str],
                  stored_assignments: Sequence[Assignment], formulate: bool) -> PersonaPlan:
    """Personas (stored ones keep their places and prompts) and their queries (stored assignments
    kept); raises ConfigError or InputError, before any call, when they cannot be made."""
    personas = source.personas(seed, stored)
    pool = source.pool()
    assignments = assign(personas, pool, source.queries, seed, stored_assignments)
    known = {(a.persona_id, a.query_id) for a in stored_assignments}
    new = [a for a in assignments if (a.persona_id, a.query_id) not in known]
    return PersonaPlan(personas, assignments, new, in_table, pool, formulate)
