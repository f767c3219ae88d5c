"""The generation spec: everything that shapes the generated text, and nothing else.

Its hash is a dataset's config fingerprint, so changing a timeout, a rate limit or the server a
model is reached on never makes a rerun regenerate what is stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from personasim.layers import LAYERS, STRATEGY_LAYER

Provider = Literal["openai", "offline", "local"]
ROLES = ("style_transfer", "assistant", "user_simulator", "distractor")


class Section(BaseModel):
    """A config section: frozen, and a typo in a key is an error that names it."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def reject_unknown(names: Iterable[str], known: Iterable[str], what: str) -> None:
    known = list(known)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; known: {', '.join(known)}")


class ModelSpec(Section):
    """The model a role writes with, and its sampling settings."""

    provider: Provider = "offline"
    model: str = "offline-template"
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=1, le=128_000)


class PoolModel(ModelSpec):
    """An assistant model in the weighted pool."""

    weight: float = Field(1.0, ge=0.0)


class RoleModels(Section):
    style_transfer: ModelSpec = Field(default_factory=ModelSpec)
    assistant: tuple[PoolModel, ...] = Field(default=(PoolModel(),), min_length=1)
    user_simulator: ModelSpec = Field(default_factory=ModelSpec)
    distractor: ModelSpec = Field(default_factory=ModelSpec)
    judges: tuple[ModelSpec, ...] = ()  # llm.judge: none, one, or several (other model families)

    @model_validator(mode="after")
    def _weights_positive(self) -> RoleModels:
        if sum(m.weight for m in self.assistant) <= 0:
            raise ValueError("model_pool weights sum to zero; give at least one model a positive weight")
        return self

    def all(self) -> list[tuple[str, ModelSpec]]:
        """(role, model) for every role, one entry per pool model."""
        return [("style_transfer", self.style_transfer), *(("assistant", m) for m in self.assistant),
                ("user_simulator", self.user_simulator), ("distractor", self.distractor),
                *(("judge", m) for m in self.judges)]


class GenerationConfig(Section):
    transfer_probability: float = Field(0.8, ge=0.0, le=1.0)
    min_turns: int = Field(2, ge=1, le=20)
    max_turns: int = Field(5, ge=1, le=20)
    target_turns: int | None = Field(None, ge=1, le=20)

    @model_validator(mode="after")
    def _turn_bounds(self) -> GenerationConfig:
        if self.min_turns > self.max_turns:
            raise ValueError(f"min_turns ({self.min_turns}) is greater than max_turns ({self.max_turns})")
        if self.target_turns is not None and not self.min_turns <= self.target_turns <= self.max_turns:
            raise ValueError(
                f"target_turns ({self.target_turns}) is outside [min_turns, max_turns] "
                f"= [{self.min_turns}, {self.max_turns}]"
            )
        return self


class RuleStrategyConfig(Section):
    probability: float = Field(0.0, ge=0.0, le=1.0)
    intensity: float = Field(0.05, ge=0.0, le=1.0)
    num_swaps: int = Field(1, ge=1, le=50)
    deletion_rate: float = Field(0.1, ge=0.0, le=1.0)
    insertion_rate: float = Field(0.1, ge=0.0, le=1.0)
    replacement_rate: float = Field(0.3, ge=0.0, le=1.0)


def _default_rule_strategies() -> dict[str, RuleStrategyConfig]:
    return {
        "typo": RuleStrategyConfig(probability=0.5, intensity=0.05),
        "word_swap": RuleStrategyConfig(probability=0.2, num_swaps=1),
        "word_deletion": RuleStrategyConfig(probability=0.2, deletion_rate=0.1),
        "word_insertion": RuleStrategyConfig(probability=0.3, insertion_rate=0.1),
        "synonym_replacement": RuleStrategyConfig(probability=0.3, replacement_rate=0.3),
        "paraphrase": RuleStrategyConfig(probability=0.0),
    }


RULE_STRATEGIES = tuple(_default_rule_strategies())


class RuleBasedConfig(Section):
    strategies: dict[str, RuleStrategyConfig] = Field(default_factory=_default_rule_strategies)

    @model_validator(mode="after")
    def _known_strategies(self) -> RuleBasedConfig:
        reject_unknown(self.strategies, RULE_STRATEGIES, "rule-based strategy")
        return self


class SemanticStrategyConfig(Section):
    mandatory: bool = False
    probability: float = Field(0.3, ge=0.0, le=1.0)


class SemanticConfig(Section):
    layer_weights: dict[str, float] = Field(
        default_factory=lambda: {"surface_noise": 0.5, "incomplete_info": 0.3, "semantic_ambiguity": 0.2}
    )
    strategies: dict[str, SemanticStrategyConfig] = Field(default_factory=dict)
    max_attempts: int = Field(2, ge=1, le=10)

    @model_validator(mode="after")
    def _known_layers(self) -> SemanticConfig:
        reject_unknown(self.layer_weights, LAYERS, "layer")
        if any(w < 0 for w in self.layer_weights.values()):
            raise ValueError("layer_weights must not be negative")
        if sum(self.layer_weights.values()) <= 0:
            raise ValueError("layer_weights sum to zero; give at least one layer a positive weight")
        reject_unknown(self.strategies, STRATEGY_LAYER, "semantic strategy")
        return self


class DistractorConfig(Section):
    enabled: bool = True
    type: Literal["semantic", "rule_based"] = "semantic"
    activation_probability: float = Field(0.3, ge=0.0, le=1.0)
    rule_based: RuleBasedConfig = Field(default_factory=RuleBasedConfig)
    semantic: SemanticConfig = Field(default_factory=SemanticConfig)


class ContractConfig(Section):
    """What a reply that breaks its role's contract gets (see personasim.roles.contract)."""

    repair_rounds: int = Field(1, ge=0, le=5, description="times a broken reply is asked for again, with the reason")
    truncation: Literal["retry", "keep", "fail"] = Field(
        "retry", description="an assistant reply cut at max_tokens: 'retry' once with twice the limit, then keep "
                             "and flag it; 'keep' and flag; 'fail' the pair")
    min_length_ratio: float = Field(0.2, gt=0, le=1, description="a rewrite's words / the query's, at least")
    max_length_ratio: float = Field(4.0, ge=1, le=50, description="a rewrite's words / the query's, at most")


class GateConfig(Section):
    """What a user turn and a rewrite must pass before they are kept (personasim.roles.gate): cheap
    rules (no assistant phrasing, no offer of help, no fourth wall, the persona's language), then,
    with a judge configured, the judge's in-character check. A draft that fails is asked for
    again with the reason, like any broken contract."""

    rules: bool = True
    language: bool = True
    judge: bool = True


class GenerationSpec(Section):
    """What is generated: the seed, each role's model, the conversation shape and the noise."""

    seed: int = 0
    models: RoleModels = Field(default_factory=RoleModels)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    distractor: DistractorConfig = Field(default_factory=DistractorConfig)
    contracts: ContractConfig = Field(default_factory=ContractConfig)
    prompts: dict[str, str] = Field(default_factory=dict, description="replacement templates: name -> text")
    gate: GateConfig = Field(default_factory=GateConfig)

    @field_validator("prompts")
    @classmethod
    def _known_prompts(cls, prompts: dict[str, str]) -> dict[str, str]:
        from personasim.prompts import check_override  # the prompts package reads no config

        return {name: check_override(name, text) for name, text in prompts.items()}

    def fingerprint(self) -> str:
        """A short hash of the whole spec: equal specs generate the same data. What was added to
        the spec after datasets were made (judges, the gate) is hashed only when set apart from its
        default, so those datasets keep their fingerprint."""
        payload = self.model_dump(mode="json")
        if not self.models.judges:
            del payload["models"]["judges"]
        if self.gate == GateConfig():
            del payload["gate"]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
