"""Run configuration: one YAML file (or the reference API's plain dict) validated by pydantic.

Every section forbids unknown keys so a typo fails at load, naming the key, instead of
silently running with a default that costs money.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from collections.abc import Callable
from typing import Any, Literal
from collections.abc import Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from personasim.errors import ConfigError

Provider = Literal["openai", "offline", "local"]
ROLES = ("style_transfer", "assistant", "user_simulator", "distractor")


def _reject_unknown(names, known, what: str) -> None:
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; known: {', '.join(known)}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EndpointConfig(_Section):
    """One OpenAI-compatible endpoint and the sampling settings used for a role.

    The API key is never stored here: only the name of the environment variable that holds it.
    """

    provider: Provider = "offline"
    model: str = "offline-template"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=1, le=128_000)
    timeout: float = Field(60.0, gt=0, le=3600)
    max_retries: int = Field(5, ge=0, le=50)
    max_retry_wait: float = Field(60.0, gt=0, le=600)
    # Client-side limits, per endpoint (base_url + key), shared by all roles; set them in llm.default.
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    max_concurrent_requests: int | None = Field(None, ge=1, le=10_000)

    @model_validator(mode="after")
    def _provider_matches_url(self) -> EndpointConfig:
        if self.provider != "openai" and self.base_url:
            raise ValueError(f"base_url is set but provider is {self.provider!r}; set provider: openai")
        return self


class PoolModel(EndpointConfig):
    """An assistant model in the weighted pool."""

    weight: float = Field(1.0, ge=0.0)


class AssistantConfig(_Section):
    model_pool: tuple[PoolModel, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights_positive(self) -> AssistantConfig:
        if sum(m.weight for m in self.model_pool) <= 0:
            raise ValueError("model_pool weights sum to zero; give at least one model a positive weight")
        return self


class LLMConfig(_Section):
    style_transfer: EndpointConfig
    assistant: AssistantConfig
    user_simulator: EndpointConfig
    distractor: EndpointConfig


class GenerationConfig(_Section):
    transfer_probability: float = Field(0.8, ge=0.0, le=1.0)
    min_turns: int = Field(2, ge=1, le=20)
    max_turns: int = Field(5, ge=1, le=20)
    target_turns: int | None = Field(None, ge=1, le=20)
    max_workers: int = Field(8, ge=1, le=1024)
    interaction_attempts: int = Field(2, ge=1, le=10)

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


class RuleStrategyConfig(_Section):
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


class RuleBasedConfig(_Section):
    strategies: dict[str, RuleStrategyConfig] = Field(default_factory=_default_rule_strategies)

    @model_validator(mode="after")
    def _known_strategies(self) -> RuleBasedConfig:
        _reject_unknown(self.strategies, RULE_STRATEGIES, "rule-based strategy")
        return self


class SemanticStrategyConfig(_Section):
    mandatory: bool = False
    probability: float = Field(0.3, ge=0.0, le=1.0)


class SemanticConfig(_Section):
    layer_weights: dict[str, float] = Field(
        default_factory=lambda: {"surface_noise": 0.5, "incomplete_info": 0.3, "semantic_ambiguity": 0.2}
    )
    strategies: dict[str, SemanticStrategyConfig] = Field(default_factory=dict)
    max_attempts: int = Field(2, ge=1, le=10)

    @model_validator(mode="after")
    def _known_layers(self) -> SemanticConfig:
        from personasim.distractor.layers import LAYERS, STRATEGY_LAYER

        _reject_unknown(self.layer_weights, LAYERS, "layer")
        if any(w < 0 for w in self.layer_weights.values()):
            raise ValueError("layer_weights must not be negative")
        if sum(self.layer_weights.values()) <= 0:
            raise ValueError("layer_weights sum to zero; give at least one layer a positive weight")
        _reject_unknown(self.strategies, STRATEGY_LAYER, "semantic strategy")
        return self


class DistractorConfig(_Section):
    enabled: bool = True
    type: Literal["semantic", "rule_based"] = "semantic"
    activation_probability: float = Field(0.3, ge=0.0, le=1.0)
    rule_based: RuleBasedConfig = Field(default_factory=RuleBasedConfig)
    semantic: SemanticConfig = Field(default_factory=SemanticConfig)


class PriceConfig(_Section):
    """USD per one million tokens."""

    input_per_1m: float = Field(ge=0.0)
    output_per_1m: float = Field(ge=0.0)


class SplitConfig(_Section):
    """Train/validation/test shares; a persona's samples all land in one split."""

    train: float = Field(0.8, ge=0.0, le=1.0)
    validation: float = Field(0.1, ge=0.0, le=1.0)
    test: float = Field(0.1, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1.0, got {total:g}")
        return self


class PersonasimConfig(_Section):
    seed: int = 0
    llm: LLMConfig
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    distractor: DistractorConfig = Field(default_factory=DistractorConfig)
    splits: SplitConfig = Field(default_factory=SplitConfig)
    pricing: dict[str, PriceConfig] = Field(default_factory=dict)

    def fingerprint(self) -> str:
        """A short hash of everything that shapes the generated text.

        Runtime knobs (workers, timeouts, retries, rate limits, prices, and where the model is
        served from) are left out so changing them does not make a rerun regenerate what is stored.
        """
        runtime = {"max_workers", "timeout", "max_retries", "max_retry_wait", "requests_per_minute",
                   "tokens_per_minute", "max_concurrent_requests", "interaction_attempts", "api_key_env",
                   "base_url"}

        def strip(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: strip(v) for k, v in value.items() if k not in runtime}
            if isinstance(value, (list, tuple)):
                return [strip(v) for v in value]
            return value

        payload = strip(self.model_dump(mode="json", exclude={"pricing", "splits"}))
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def map_endpoints(config: PersonasimConfig, change: Callable[[dict[str, Any]], dict[str, Any]]) -> PersonasimConfig:
    """The config with `change` applied to every role's endpoint (and every pool model)."""
    raw = config.model_dump()
    llm = raw["llm"]
    for role in ("style_transfer", "user_simulator", "distractor"):
        llm[role] = change(llm[role])
    llm["assistant"]["model_pool"] = [change(m) for m in llm["assistant"]["model_pool"]]
    return PersonasimConfig.model_validate(raw)


def with_request_limit(config: PersonasimConfig, max_concurrent_requests: int) -> PersonasimConfig:
    """Every endpoint capped at `max_concurrent_requests` calls in flight (a lower configured limit stays)."""
    return map_endpoints(config, lambda e: {**e, "max_concurrent_requests": min(
        e.get("max_concurrent_requests") or max_concurrent_requests, max_concurrent_requests)})


def with_worker_share(config: PersonasimConfig, workers: int) -> PersonasimConfig:
    """One worker process's share of every endpoint's limits, when `workers` processes call it at once.

    Each process paces its own calls, so a cluster of N keeps the configured totals only if each
    takes 1/N of them.
    """
    if workers <= 1:
        return config

    def share(endpoint: dict[str, Any]) -> dict[str, Any]:
        changed = dict(endpoint)
        for name in ("requests_per_minute", "tokens_per_minute"):
            if endpoint.get(name):
                changed[name] = endpoint[name] / workers
        if endpoint.get("max_concurrent_requests"):
            changed["max_concurrent_requests"] = max(1, endpoint["max_concurrent_requests"] // workers)
        return changed

    return map_endpoints(config, share)


BUNDLED_LOCAL_MODEL = "smollm2"
BUNDLED_MAX_TOKENS = 160  # the bundled 135M model rambles to any limit; on 2 cores 512 tokens take ~10 s


def with_local_model(config: PersonasimConfig, model: str = BUNDLED_LOCAL_MODEL) -> PersonasimConfig:
    """Every role on one local llama.cpp model (the bundled SmolLM2, or a GGUF path)."""

    def local(endpoint: dict[str, Any]) -> dict[str, Any]:
        changed = {**endpoint, "provider": "local", "model": model, "base_url": None}
        if model == BUNDLED_LOCAL_MODEL:
            changed["max_tokens"] = min(endpoint["max_tokens"], BUNDLED_MAX_TOKENS)
        return changed

    return map_endpoints(config, local)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _expand_llm(llm: Mapping[str, Any]) -> dict[str, Any]:
    """Apply `llm.default` to every role so each role only states what differs."""
    unknown = sorted(set(llm) - {"default", *ROLES})
    if unknown:
        raise ConfigError(f"llm.{unknown[0]}: unknown key (expected default, {', '.join(ROLES)})")
    default = llm.get("default") or {}
    if not isinstance(default, Mapping):
        raise ConfigError("llm.default: must be a mapping")
    expanded: dict[str, Any] = {}
    for role in ROLES:
        section = llm.get(role) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"llm.{role}: must be a mapping")
        if role == "assistant":
            pool = section.get("model_pool")
            rest = {k: v for k, v in section.items() if k != "model_pool"}
            base = _merge(default, rest)
            if pool is None:
                pool = [{}]
            if not isinstance(pool, (list, tuple)):
                raise ConfigError("llm.assistant.model_pool: must be a list")
            expanded[role] = {"model_pool": [_merge(base, m) if isinstance(m, Mapping) else m for m in pool]}
        else:
            expanded[role] = _merge(default, section)
    return expanded


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{source}: {loc}: {msg}")
    return "; ".join(lines)


def load_config(source: str | Path | Mapping[str, Any] | PersonasimConfig | None = None) -> PersonasimConfig:
    """Load and validate a config from a YAML path, a dict, or nothing (the offline defaults)."""
    if isinstance(source, PersonasimConfig):
        return source
    origin = "config"
    if source is None:
        raw: Any = {}
    elif isinstance(source, Mapping):
        raw = dict(source)
    else:
        origin = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{origin}: cannot read config file: {exc.strerror or exc}") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{origin}: top level must be a mapping of sections")
    raw = dict(raw)
    llm = raw.get("llm") or {}
    if not isinstance(llm, Mapping):
        raise ConfigError(f"{origin}: llm: must be a mapping")
    try:
        raw["llm"] = _expand_llm(llm)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    try:
        return PersonasimConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None
