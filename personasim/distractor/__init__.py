"""Noise injection for user turns: rule-based or the three-layer semantic distractor."""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

from personasim.config import PersonasimConfig, load_config
from personasim.distractor.intent import IntentSlotExtractor, Semantics
from personasim.distractor.results import NoiseResult, NoisyVersion
from personasim.distractor.rule_based import DistractorModel
from personasim.distractor.semantic import SemanticDistractorModel
from personasim.llm.client import LLMClient

__all__ = [
    "DistractorModel",
    "IntentSlotExtractor",
    "NoiseResult",
    "NoisyVersion",
    "Semantics",
    "SemanticDistractorModel",
    "create_distractor_model",
]


def create_distractor_model(
    config: Mapping[str, Any] | PersonasimConfig | str | None,
    use_semantic: bool = True,
    llm_client: LLMClient | None = None,
) -> DistractorModel | SemanticDistractorModel:
    """The distractor the config describes; without a client, one is built for the `distractor` role."""
    cfg = load_config(config)
    if llm_client is None:
        from personasim.llm.factory import build_clients

        llm_client = build_clients(cfg).distractor
    if use_semantic:
        return SemanticDistractorModel(cfg.distractor, llm_client, seed=cfg.seed)
    return DistractorModel(cfg.distractor, llm_client, seed=cfg.seed)

