"""The settings of the persona stages: sampling personas from a bank, assigning queries from a
pool, formulating each persona's system prompt. Run options (the config's `personas`, `queries`
and `formulation` sections): they choose which pairs a run has, not how a pair's text is written,
so none of them is in the dataset's config fingerprint (a persona's id is its features' hash,
and its system prompt is stored with it the moment it is written).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from personasim.config.spec import Section
from personasim.errors import ConfigError


class SamplingSettings(Section):
    """How personas are drawn from a bank (PersonaGym's sampling_config.yaml, flattened)."""

    bank: str | None = Field(None, description="a persona bank YAML; empty: the default bank")
    source: str | None = Field(None, description="a file of personas to use instead of sampling")
    num_personas: int = Field(100, ge=1, le=10_000_000)
    strategy: Literal["random", "stratified", "weighted"] = "random"
    feature_availability_rate: float = Field(0.7, ge=0.0, le=1.0)
    min_features: int | None = Field(None, ge=0)
    max_features: int | None = Field(None, ge=1)
    required_dimensions: tuple[str, ...] = ()
    min_hamming_distance: int = Field(3, ge=1, le=1000)
    max_retries: int = Field(100, ge=1, le=100_000)
    priority_dimensions: tuple[str, ...] = ()
    priority_weight: float = Field(2.0, ge=1.0, le=100.0)
    # PersonaGym's `constraints`: by default every constraint dimension is on every persona
    constraint_probability: float = Field(1.0, ge=0.0, le=1.0)
    min_constraints: int | None = Field(None, ge=0)
    max_constraints: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> SamplingSettings:
        if self.min_features is not None and self.max_features is not None and self.min_features > self.max_features:
            raise ValueError(f"min_features ({self.min_features}) is greater than max_features ({self.max_features})")
        if (self.min_constraints is not None and self.max_constraints is not None
                and self.min_constraints > self.max_constraints):
            raise ValueError(f"min_constraints ({self.min_constraints}) is greater than max_constraints "
                             f"({self.max_constraints})")
        return self


class QueryMatch(Section):
    """Prefer, for each persona, queries whose metadata field matches one of its features."""

    metadata: str = Field(min_length=1, description="the query metadata field, e.g. category")
    dimension: str = Field(min_length=1, description="the persona dimension, e.g. domain_interest")


class QuerySettings(Section):
    """How queries are taken from a pool and given to personas."""

    pool: tuple[str, ...] = Field((), description="query files (JSONL, JSON, CSV, Parquet)")
    queries_per_persona: int = Field(5, ge=1, le=1000)
    selection: Literal["random", "in_order"] = "random"
    max_queries: int | None = Field(None, ge=1)
    on_exhausted: Literal["error", "reuse"] = "error"
    near_duplicate_threshold: float = Field(0.9, gt=0.0, le=1.0,
                                            description="word-shingle Jaccard at or above which a query is a "
                                                        "near duplicate of an earlier one (1.0: exact only)")
    match: QueryMatch | None = None


class FormulationSettings(Section):
    """The formulator: one persona-tailored system prompt for the assistant, per persona."""

    enabled: bool = True
    min_words: int = Field(25, ge=1, le=2000)
    min_chars: int = Field(0, ge=0, le=20_000, description="PersonaGym's min_prompt_length")
    template: str | None = Field(None, description="the formulator's prompt (its text; $persona is filled)")

    @field_validator("template")
    @classmethod
    def _placeholders(cls, text: str | None) -> str | None:
        from personasim.prompts import check_override  # the prompts package reads no config

        return None if text is None else check_override("formulate_system_prompt", text)


_STRATEGIES = {"random": "random", "stratified": "stratified", "weighted": "weighted", "custom": "weighted"}
_BLOCKS = {"random": "random_sampling", "stratified": "stratified_sampling", "custom": "custom_sampling"}
_SETTINGS = set(SamplingSettings.model_fields) - {"bank", "source", "num_personas"}


def sampling_fields(raw: Mapping[str, Any], origin: str) -> tuple[dict[str, Any], list[str]]:
    """A sampling config as SamplingSettings fields, and a notice for what it asks that personasim
    does otherwise. Reads personasim's flat keys, PersonaGym's file as its code reads it (`strategy`,
    `random_sampling`, `diversity.max_attempts`, `constraints`, top-level `required_dimensions`) and
    as its documentation shows it (`sampling`, `diversity.max_retries`)."""
    fields: dict[str, Any] = {k: v for k, v in raw.items() if k in _SETTINGS and k != "strategy"}
    notices: list[str] = []
    strategy = str(raw.get("strategy") or "random")
    if strategy not in _STRATEGIES:
        raise ConfigError(f"{origin}: strategy: {strategy!r} is not one of {', '.join(_STRATEGIES)}")
    fields["strategy"] = _STRATEGIES[strategy]
    if strategy == "custom":
        notices.append("strategy custom: sampled as 'weighted' (the bank's per-value weights); custom_sampling "
                       "rules are not applied")
    block = {**(raw.get("sampling") or {}), **(raw.get(_BLOCKS.get(strategy, "")) or {})}
    rate = block.get("feature_availability_rate", block.get("base_availability_rate"))
    if rate is not None:
        fields["feature_availability_rate"] = rate
    for key in ("min_features", "max_features", "required_dimensions"):
        if block.get(key) is not None:
            fields[key] = block[key]
    diversity = raw.get("diversity") or {}
    if diversity:
        fields["min_hamming_distance"] = (diversity.get("min_hamming_distance", 3)
                                          if diversity.get("enabled", True) else 1)
        attempts = diversity.get("max_retries", diversity.get("max_attempts"))
        if attempts is not None:
            fields["max_retries"] = attempts
        for key in ("priority_dimensions", "priority_weight"):
            if diversity.get(key) is not None:
                fields[key] = diversity[key]
    constraints = raw.get("constraints")
    if isinstance(constraints, Mapping):  # PersonaGym's code: constraint dimensions drawn, then topped up
        required = constraints.get("require_constraint", True)
        fields["constraint_probability"] = constraints.get("constraint_probability", 0.0)
        fields["min_constraints"] = constraints.get("min_constraints", 1) if required else 0
        if constraints.get("max_constraints") is not None:
            fields["max_constraints"] = constraints["max_constraints"]
    if any(raw.get(k) is not None for k in ("seed",)) or any(
            (raw.get(b) or {}).get("seed") is not None for b in _BLOCKS.values()):
        notices.append("seed: personasim samples with the run's seed")
    ignored = sorted(set(raw) - _SETTINGS - {"strategy", "sampling", "diversity", "constraints", "seed",
                                             *_BLOCKS.values()})
    if ignored:
        notices.append(f"{', '.join(ignored)}: not used")
    return fields, [f"{origin}: {n}" for n in notices]
