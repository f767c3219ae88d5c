"""A persona bank: the dimensions personas are sampled from, their values, target weights and the
value pairs no persona may have together. Checked whole at load, each error naming the file, the
dimension and the value.

PersonaGym's `persona.yaml` is read as it is, in both of its layouts (`dimensions` as a mapping of
name to dimension, or a list of dimensions with `name`); `weights` and `exclusions` are personasim's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from personasim.errors import ConfigError

DEFAULT_BANK = "default"


class _BankLoader(yaml.SafeLoader):
    """YAML 1.1 reads `18_24` as the integer 1824 (PersonaGym's own bank has such values): a
    scalar with an underscore stays the text it is."""


def _int_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    return text if "_" in str(text) else loader.construct_yaml_int(node)


_BankLoader.add_constructor("tag:yaml.org,2002:int", _int_or_text)


@dataclass(frozen=True)
class Dimension:
    """One feature personas have: its values and, optionally, the share each should get."""

    name: str
    values: tuple[str, ...]
    is_constraint: bool = False
    description: str = ""
    weights: tuple[float, ...] | None = None

    @cached_property
    def index(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.values)}

    def target(self) -> dict[str, float]:
        """Each value's target share: its weight's share, or an equal share."""
        weights = self.weights or (1.0,) * len(self.values)
        total = sum(weights)
        return {v: w / total for v, w in zip(self.values, weights, strict=True)}


@dataclass(frozen=True)
class Exclusion:
    """No persona has every `when` value together with any `exclude` value."""

    when: tuple[tuple[str, frozenset[str]], ...]
    exclude: tuple[tuple[str, frozenset[str]], ...]

    def broken_by(self, features: Mapping[str, str]) -> bool:
        return (all(features.get(d) in vs for d, vs in self.when)
                and any(features.get(d) in vs for d, vs in self.exclude))


@dataclass(frozen=True)
class PersonaBank:
    source: str
    dimensions: tuple[Dimension, ...]
    exclusions: tuple[Exclusion, ...] = field(default=())

    @cached_property
    def by_name(self) -> dict[str, Dimension]:
        return {d.name: d for d in self.dimensions}

    def fingerprint(self) -> str:
        """What the bank holds, hashed: datasets note which bank their personas came from."""
        payload = json.dumps([[d.name, d.values, d.is_constraint, d.weights] for d in self.dimensions]
                             + [[list(map(list, e.when)), list(map(list, e.exclude))] for e in self.exclusions],
                             default=sorted)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_bank(source: str | Path | None = None) -> PersonaBank:
    """The bank in a YAML file, or the default bank shipped with personasim (None or "default")."""
    if source is None or str(source) == DEFAULT_BANK:
        text = resources.files(__package__).joinpath("default_bank.yaml").read_text(encoding="utf-8")
        return parse_bank(text, "the default persona bank")
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read persona bank: {exc.strerror or exc}") from None
    return parse_bank(text, str(source))


def parse_bank(text: str, origin: str) -> PersonaBank:
    try:
        raw = yaml.load(text, Loader=_BankLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping) or "dimensions" not in raw:
        raise ConfigError(f"{origin}: a persona bank needs a 'dimensions' section")
    unknown = sorted(set(raw) - {"dimensions", "exclusions", "name", "description", "version"})
    if unknown:
        raise ConfigError(f"{origin}: {unknown[0]}: unknown key (a bank has dimensions and exclusions)")
    listed = raw["dimensions"]
    if isinstance(listed, Mapping):  # PersonaGym's documented layout: name -> dimension
        listed = [{"name": name, **(spec or {})} if isinstance(spec, Mapping) else spec
                  for name, spec in listed.items()]
    if not isinstance(listed, list) or not listed:
        raise ConfigError(f"{origin}: dimensions: must be a non-empty mapping or list of dimensions")
    dimensions = [_dimension(spec, i, origin) for i, spec in enumerate(listed)]
    seen: set[str] = set()
    for dim in dimensions:
        if dim.name in seen:
            raise ConfigError(f"{origin}: dimension {dim.name!r}: defined twice")
        seen.add(dim.name)
    by_name = {d.name: d for d in dimensions}
    exclusions = tuple(_exclusion(rule, i, by_name, origin) for i, rule in enumerate(raw.get("exclusions") or []))
    return PersonaBank(origin, tuple(dimensions), exclusions)


_DIMENSION_KEYS = {"name", "values", "is_constraint", "description", "weights", "type", "category"}


def _dimension(spec: Any, position: int, origin: str) -> Dimension:
    if not isinstance(spec, Mapping) or not spec.get("name"):
        raise ConfigError(f"{origin}: dimensions[{position}]: a dimension needs a name")
    name = str(spec["name"])
    where = f"{origin}: dimension {name!r}"
    unknown = sorted(set(spec) - _DIMENSION_KEYS)
    if unknown:
        raise ConfigError(f"{where}: {unknown[0]}: unknown key (known: {', '.join(sorted(_DIMENSION_KEYS))})")
    values = spec.get("values")
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: values: must be a non-empty list")
    texts = []
    for value in values:
        if isinstance(value, (Mapping, list)) or value is None or str(value).strip() == "":
            raise ConfigError(f"{where}: value {value!r}: must be a non-empty text")
        if str(value) in texts:
            raise ConfigError(f"{where}: value {str(value)!r}: listed twice")
        texts.append(str(value))
    return Dimension(name, tuple(texts), bool(spec.get("is_constraint", False)), str(spec.get("description") or ""),
                     _weights(spec.get("weights"), texts, where))


def _weights(given: Any, values: list[str], where: str) -> tuple[float, ...] | None:
    if given is None:
        return None
    if not isinstance(given, Mapping):
        raise ConfigError(f"{where}: weights: must map each value to its weight")
    for value, weight in given.items():
        if str(value) not in values:
            raise ConfigError(f"{where}: weights: value {str(value)!r} is not one of the dimension's values")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise ConfigError(f"{where}: weights: value {str(value)!r}: weight must be a number >= 0, got {weight!r}")
    weights = {str(k): float(v) for k, v in given.items()}
    missing = [v for v in values if v not in weights]
    if missing:
        raise ConfigError(f"{where}: weights: value {missing[0]!r} has no weight (give every value one, or none)")
    if sum(weights.values()) <= 0:
        raise ConfigError(f"{where}: weights: sum to zero")
    return tuple(weights[v] for v in values)


def _exclusion(rule: Any, position: int, dims: Mapping[str, Dimension], origin: str) -> Exclusion:
    where = f"{origin}: exclusions[{position}]"
    if not isinstance(rule, Mapping) or set(rule) != {"when", "exclude"}:
        raise ConfigError(f"{where}: must have exactly 'when' and 'exclude' (dimension -> value or values)")
    parts = []
    for key in ("when", "exclude"):
        given = rule[key]
        if not isinstance(given, Mapping) or not given:
            raise ConfigError(f"{where}.{key}: must map dimensions to a value or a list of values")
        part = []
        for name, values in given.items():
            dim = dims.get(str(name))
            if dim is None:
                raise ConfigError(f"{where}.{key}: dimension {str(name)!r} is not in the bank")
            listed = [str(v) for v in (values if isinstance(values, list) else [values])]
            for value in listed:
                if value not in dim.index:
                    raise ConfigError(f"{where}.{key}: dimension {dim.name!r}: value {value!r} is not one of "
                                      "its values")
            part.append((dim.name, frozenset(listed)))
        parts.append(tuple(part))
    when, exclude = parts
    if {d for d, _ in when} & {d for d, _ in exclude}:
        raise ConfigError(f"{where}: a dimension is both in 'when' and in 'exclude'")
    return Exclusion(when, exclude)
