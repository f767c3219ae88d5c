"""Noise injection for user turns: rule-based or the three-layer semantic distractor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from personasim.config import PersonasimConfig, load_config
from personasim.distractor.intent import IntentSlotExtractor
from personasim.distractor.rule_based import DistractorModel
from personasim.distractor.semantic import SemanticDistractorModel
from personasim.llm.client import LLMClient
from personasim.llm.ledger import UsageLog
from personasim.records import NoiseResult, NoisyVersion, Semantics

Distractor = DistractorModel | SemanticDistractorModel

__all__ = [
    "Distractor",
    "DistractorModel",
    "IntentSlotExtractor",
    "NoiseResult",
    "NoisyVersion",
    "SemanticDistractorModel",
    "Semantics",
    "build_distractor",
    "create_distractor_model",
]


def build_distractor(config: PersonasimConfig, client: LLMClient, use_semantic: bool,
                     usage: UsageLog | None = None) -> Distractor:
    if use_semantic:
        return SemanticDistractorModel(config.spec.distractor, client, seed=config.seed, usage=usage)
    return DistractorModel(config.spec.distractor, client, seed=config.seed, usage=usage,
                           repair_rounds=config.spec.contracts.repair_rounds)


def create_distractor_model(
    config: Mapping[str, Any] | PersonasimConfig | str | None,
    use_semantic: bool = True,
    llm_client: LLMClient | None = None,
) -> Distractor:
    """The distractor the config describes; without a client, one is built for the `distractor` role."""
    cfg = load_config(config)
    if llm_client is None:
        from personasim.llm.factory import build_clients

        llm_client = build_clients(cfg).distractor
    return build_distractor(cfg, llm_client, use_semantic)
