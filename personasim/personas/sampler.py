"""Personas sampled from a bank: constraint and required dimensions always, the others by the
availability rate within the feature bounds; values by strategy (random, weighted by the bank's
target shares, or stratified: every value of a dimension before any repeats); no excluded pair
of values; each persona at least `min_hamming_distance` from every other.

Deterministic: persona `i` draws from its own stream of (seed, i), and depends on the personas
before it only through the diversity rule and the stratified counts, so growing `num_personas`
from 50 to 100 keeps the first 50, and personas already stored keep their places.
"""

from __future__ import annotations

import bisect
import math
import random
import zlib
from collections.abc import Mapping, Sequence

from personasim.config.personas import SamplingSettings
from personasim.errors import ConfigError
from personasim.personas.bank import PersonaBank
from personasim.personas.diversity import Codes, HammingIndex
from personasim.personas.persona import Persona
from personasim.rng import stream

ABSENT = -1

Part = tuple[int, frozenset[int]]
Rule = tuple[frozenset[int], tuple[Part, ...], tuple[Part, ...], bool]


class PersonaSampler:
    def __init__(self, bank: PersonaBank, settings: SamplingSettings, seed: int = 0) -> None:
        self.bank, self.settings, self.seed = bank, settings, seed
        dims = bank.dimensions
        self.positions = {d.name: p for p, d in enumerate(dims)}
        for key in ("required_dimensions", "priority_dimensions"):
            for name in getattr(settings, key):
                if name not in self.positions:
                    raise ConfigError(f"{key}: dimension {name!r} is not in the persona bank {bank.source}")
        self.required = {self.positions[n] for n in settings.required_dimensions}
        self.constraints = [p for p, d in enumerate(dims) if d.is_constraint]
        self.all_constraints = (settings.min_constraints is None and settings.max_constraints is None
                                and settings.constraint_probability == 1.0)
        always = self.required | (set(self.constraints) if self.all_constraints else set())
        self.always = always
        self.optional = [p for p in range(len(dims)) if p not in always and p not in self.constraints]
        if settings.max_features is not None and settings.max_features < len(always):
            raise ConfigError(f"max_features ({settings.max_features}) is below the {len(always)} dimensions every "
                              f"persona has (constraint and required dimensions of {bank.source})")
        if settings.min_features is not None and settings.min_features > len(dims):
            raise ConfigError(f"min_features ({settings.min_features}) is more than the {len(dims)} dimensions of "
                              f"{bank.source}")
        self.sizes = [len(d.values) + (0 if p in always else 1) for p, d in enumerate(dims)]
        self.weights = [settings.priority_weight if d.name in settings.priority_dimensions else 1.0 for d in dims]
        # per dimension, each exclusion it is part of, as (its own values, the other `when` parts, the
        # `exclude` parts, whether it is a `when` part): what a draw must avoid beside what is drawn
        self.rules_of: dict[int, list[Rule]] = {}
        for rule in bank.exclusions:
            when = [(self.positions[n], frozenset(dims[self.positions[n]].index[v] for v in vs)) for n, vs in rule.when]
            exclude = [(self.positions[n], frozenset(dims[self.positions[n]].index[v] for v in vs))
                       for n, vs in rule.exclude]
            for position, own in when:
                others = tuple(part for part in when if part[0] != position)
                self.rules_of.setdefault(position, []).append((own, others, tuple(exclude), True))
            for position, own in exclude:
                self.rules_of.setdefault(position, []).append((own, tuple(when), (), False))
        self.cumulative = [_cumulative(d.weights) if d.weights else None for d in dims]

    # -- limits ---------------------------------------------------------------------------------
    def capacity(self) -> int:
        """The most personas the bank can give at this distance (the Singleton bound: drop the
        dimensions that could carry the differences; what is left must tell every persona apart)."""
        needed = math.ceil(self.settings.min_hamming_distance / max(self.weights))
        kept = sorted(self.sizes)[:max(0, len(self.sizes) - needed + 1)]
        return math.prod(kept) if kept else 1

    # -- sampling -------------------------------------------------------------------------------
    def check(self, n: int) -> None:
        """ConfigError now, before anything is sampled or paid for, when `n` personas cannot exist."""
        limit = self.capacity()
        if n > limit:
            raise ConfigError(f"persona bank {self.bank.source}: at most {limit:,} personas can be "
                              f"{self.settings.min_hamming_distance} features apart from each other; asked for {n:,} "
                              "(lower min_hamming_distance or add dimensions or values)")

    def sample(self, n: int | None = None, existing: Sequence[Persona] = ()) -> list[Persona]:
        """The first `n` personas (default: num_personas); `existing` ones (stored by an earlier
        run, by index) keep their places and the rest are drawn around them."""
        n = self.settings.num_personas if n is None else n
        self.check(n)
        index = HammingIndex(self.sizes, self.settings.min_hamming_distance, self.weights)
        counts = [[0] * len(d.values) for d in self.bank.dimensions]
        stored = {p.index: p for p in existing if p.index < n}
        personas = []
        for number in range(n):
            persona = stored.get(number)
            codes = self.codes(persona.features) if persona is not None else self._draw_persona(number, index, counts)
            index.add(codes)
            for position, code in enumerate(codes):
                if 0 <= code < len(counts[position]):
                    counts[position][code] += 1
            personas.append(persona or Persona.sampled(self.features(codes), number))
        return personas

    def _draw_persona(self, number: int, index: HammingIndex, counts: list[list[int]]) -> Codes:
        rng = stream(self.seed, "persona", number)
        for _ in range(self.settings.max_retries):
            codes = self._candidate(rng, counts)
            if codes is not None and not index.too_close(codes):
                return codes
        raise ConfigError(f"persona bank {self.bank.source}: persona {number + 1:,}: none of "
                          f"{self.settings.max_retries} candidates was {self.settings.min_hamming_distance} "
                          f"features away from the {number:,} before it (lower min_hamming_distance, raise "
                          "max_retries, or add dimensions or values)")

    def _candidate(self, rng: random.Random, counts: list[list[int]]) -> Codes | None:
        codes = [ABSENT] * len(self.sizes)
        present = self._present(rng)
        for position in present:
            code = self._value(position, codes, rng, counts)
            if code is None and position in self.always:
                return None  # an exclusion left a dimension every persona has without a value
            codes[position] = ABSENT if code is None else code
        filled = sum(c != ABSENT for c in codes)
        if self.settings.min_features is not None and filled < min(self.settings.min_features, len(codes)):
            return None
        return tuple(codes)

    def _present(self, rng: random.Random) -> list[int]:
        """Which dimensions the candidate has, in bank order."""
        settings = self.settings
        chosen = set(self.always)
        if not self.all_constraints:
            picked = [p for p in self.constraints if p not in chosen and rng.random() < settings.constraint_probability]
            rest = [p for p in self.constraints if p not in chosen and p not in picked]
            rng.shuffle(rest)
            while settings.min_constraints is not None and len(picked) < settings.min_constraints and rest:
                picked.append(rest.pop())
            if settings.max_constraints is not None and len(picked) > settings.max_constraints:
                rng.shuffle(picked)
                picked = picked[:settings.max_constraints]
            chosen.update(picked)
        optional = [p for p in self.optional if rng.random() < settings.feature_availability_rate]
        left = [p for p in self.optional if p not in optional]
        if settings.min_features is not None and len(chosen) + len(optional) < settings.min_features:
            optional += rng.sample(left, min(len(left), settings.min_features - len(chosen) - len(optional)))
        if settings.max_features is not None and len(chosen) + len(optional) > settings.max_features:
            optional = rng.sample(optional, settings.max_features - len(chosen))
        return sorted(chosen.union(optional))

    def _value(self, position: int, codes: list[int], rng: random.Random, counts: list[list[int]]) -> int | None:
        """A value for one dimension by the strategy, among those no exclusion forbids beside the
        values drawn so far; None when every value is forbidden."""
        size = len(self.bank.dimensions[position].values)
        allowed = range(size)
        forbidden = self._forbidden(position, codes) if position in self.rules_of else None
        if forbidden:
            allowed = [v for v in allowed if v not in forbidden]  # type: ignore[assignment]
            if not allowed:
                return None
        strategy = self.settings.strategy
        if strategy == "stratified":
            least = min(counts[position][v] for v in allowed)
            return rng.choice([v for v in allowed if counts[position][v] == least])
        cumulative = self.cumulative[position]
        if strategy == "weighted" and cumulative is not None:
            if len(allowed) == size:
                return _pick(cumulative, rng)
            weights = [cumulative[v] - (cumulative[v - 1] if v else 0.0) for v in allowed]
            return allowed[_pick(_cumulative(tuple(weights)), rng)] if sum(weights) > 0 else None
        return allowed[int(rng.random() * len(allowed))]

    def _forbidden(self, position: int, codes: list[int]) -> set[int]:
        """The values of `position` that would complete an exclusion with the values drawn so far."""
        forbidden: set[int] = set()
        for own, when, exclude, is_when in self.rules_of[position]:
            if all(codes[p] in vs for p, vs in when) and (not is_when or any(codes[p] in vs for p, vs in exclude)):
                forbidden |= own
        return forbidden

    # -- features <-> codes ---------------------------------------------------------------------
    def features(self, codes: Codes) -> dict[str, str]:
        dims = self.bank.dimensions
        return {dims[p].name: dims[p].values[c] for p, c in enumerate(codes) if c != ABSENT}

    def codes(self, features: Mapping[str, str]) -> Codes:
        """A persona's codes; a value the bank does not have (a stored persona from an older bank)
        gets a code of its own past the bank's, so it still counts as different."""
        out = []
        for dim in self.bank.dimensions:
            value = features.get(dim.name)
            if value is None:
                out.append(ABSENT)
            else:
                out.append(dim.index.get(str(value), len(dim.values) + zlib.crc32(str(value).encode())))
        return tuple(out)


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _pick(cumulative: Sequence[float], rng: random.Random) -> int:
    return min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)
