"""Where a run's personas and queries come from: a bank to sample from (or a persona file) and a
query pool, resolved from the run's options over its config's `personas` and `queries` sections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from personasim.config import PersonasimConfig
from personasim.config.personas import QuerySettings, SamplingSettings
from personasim.errors import ConfigError, InputError
from personasim.personas.bank import load_bank
from personasim.personas.files import read_personas
from personasim.personas.persona import Persona
from personasim.personas.queries import QueryPool, load_pool
from personasim.personas.sampler import PersonaSampler

MAX_PERSONAS = 10_000_000


def sampling_settings(config: PersonasimConfig, personas: str | None, persona_bank: str | None) -> SamplingSettings:
    """The config's sampling settings with the options over them: `personas` a number to sample or
    a persona file, `persona_bank` a bank file."""
    sampling = config.personas or SamplingSettings()
    if personas is not None:
        if personas.strip().isdigit():
            count = int(personas)
            if not 1 <= count <= MAX_PERSONAS:
                raise ConfigError(f"--personas: a number from 1 to {MAX_PERSONAS:,}, or a persona file; got {personas}")
            sampling = sampling.model_copy(update={"num_personas": count, "source": None})
        elif not Path(personas).exists():
            raise ConfigError(f"--personas: {personas}: no such persona file (or give a number to sample)")
        else:
            sampling = sampling.model_copy(update={"source": personas})
    if persona_bank is not None:
        if not Path(persona_bank).is_file() and persona_bank != "default":
            raise ConfigError(f"--persona-bank: {persona_bank}: no such file")
        sampling = sampling.model_copy(update={"bank": persona_bank})
    return sampling


@dataclass(frozen=True)
class PersonaSource:
    sampling: SamplingSettings
    queries: QuerySettings

    @classmethod
    def resolve(cls, config: PersonasimConfig, *, personas: str | None = None, queries: str | None = None,
                queries_per_persona: int | None = None, persona_bank: str | None = None) -> PersonaSource | None:
        """The run's source, or None when it runs ready pairs (no persona option, no `personas`
        section). `personas` is a number to sample or a persona file."""
        if personas is None and queries is None and persona_bank is None and config.personas is None:
            return None
        sampling = sampling_settings(config, personas, persona_bank)
        selection = config.queries or QuerySettings()
        if queries is not None:
            selection = selection.model_copy(update={"pool": (queries,)})
        if queries_per_persona is not None:
            selection = selection.model_copy(update={"queries_per_persona": queries_per_persona})
        if not selection.pool:
            raise ConfigError("--queries: personas need a query pool (--queries FILE, or queries.pool in the config)")
        return cls(sampling, selection)

    def sampler(self, seed: int) -> PersonaSampler:
        return PersonaSampler(load_bank(self.sampling.bank), self.sampling, seed)

    def personas(self, seed: int, stored: Mapping[str, Persona] | None = None) -> list[Persona]:
        """The run's personas in order, each with the prompt a stored copy of it has (a prompt in
        a persona file wins)."""
        stored = stored or {}
        if self.sampling.source:
            given = read_personas(self.sampling.source)
            return [p if p.has_prompt or p.persona_id not in stored else replace(stored[p.persona_id], index=p.index)
                    for p in given]
        sampled = self.sampler(seed).sample(self.sampling.num_personas, list(stored.values()))
        return [stored.get(p.persona_id, p) for p in sampled]

    def check(self, seed: int) -> None:
        """What can be checked in a moment, before the flow: the bank and the sampling settings,
        whether that many personas can exist, the persona file, the query pool and whether it holds
        enough queries to give each persona its own."""
        if self.sampling.source:
            count = len(read_personas(self.sampling.source))
        else:
            count = self.sampling.num_personas
            self.sampler(seed).check(count)
        for path in self.queries.pool:
            if not Path(path).exists():
                raise InputError(f"{path}: query file not found")
        kept = len(self.pool().queries)
        wanted = count * self.queries.queries_per_persona
        if wanted > kept and self.queries.on_exhausted == "error":
            per = self.queries.queries_per_persona
            raise ConfigError(f"queries: the pool holds {kept:,} queries for {wanted:,} assignments ({count:,} "
                              f"personas x {per}); add queries, lower queries_per_persona or the number of "
                              "personas, or set queries.on_exhausted: reuse")

    def pool(self) -> QueryPool:
        return load_pool(self.queries)

    def describe(self) -> str:
        bank = self.sampling.bank or "the default bank"
        origin = self.sampling.source or f"{self.sampling.num_personas:,} sampled from {bank}"
        return f"personas: {origin}; queries: {', '.join(self.queries.pool)} ({self.queries.queries_per_persona} each)"
