"""The three-layer semantic distractor: extract intent and slots, pick a layer and strategies, rewrite."""

from __future__ import annotations

import json
import random

from pydantic import BaseModel, ConfigDict, Field, field_validator

from personasim.config import DistractorConfig
from personasim.distractor.base import BaseDistractor
from personasim.distractor.intent import IntentSlotExtractor, Semantics
from personasim.distractor.layers import LAYER_GOALS, LAYER_INDEX, LAYERS
from personasim.distractor.results import NoiseResult
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.json_reply import ask_json
from personasim.rng import weighted_choice


class _RewriteAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    noisy_text: str = Field(min_length=1)
    applied_strategies: list[str] = Field(default_factory=list)

    @field_validator("noisy_text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("noisy_text is blank")
        return value


class SemanticDistractorModel(BaseDistractor):
    """Layer 1 keeps intent and slots, layer 2 blurs slots, layer 3 confuses the intent."""

    def __init__(self, config: DistractorConfig, llm_client: LLMClient, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.settings = config.semantic
        self.llm = llm_client
        self.extractor = IntentSlotExtractor(llm_client, self.settings.max_attempts)

    def choose_layer(self, rng: random.Random) -> str:
        names = [n for n in LAYERS if self.settings.layer_weights.get(n, 0) > 0]
        return weighted_choice(rng, names, [self.settings.layer_weights[n] for n in names])

    def choose_strategies(self, layer: str, rng: random.Random) -> list[str]:
        """Mandatory strategies always; the others each with their probability; at least one."""
        chosen = []
        for name in LAYERS[layer]:
            setting = self.settings.strategies.get(name)
            if setting is None:
                continue
            if setting.mandatory or rng.random() < setting.probability:
                chosen.append(name)
        if not chosen:
            default_pool = [n for n in LAYERS[layer] if n not in self.settings.strategies] or list(LAYERS[layer])
            chosen.append(rng.choice(default_pool))
        return chosen

    def _rewrite_messages(self, text: str, layer: str, strategies: list[str], semantics: Semantics) -> list[dict]:
        instructions = "\n".join(f"- {s}: {LAYERS[layer][s]}" for s in strategies)
        system = (
            "You rewrite a user's message into a realistic, noisier version, as a real user might type it. "
            f"Layer: {layer} — {LAYER_GOALS[layer]}.\nApply these strategies:\n{instructions}\n"
            'Reply with a JSON object only: {"noisy_text": "<rewritten message>", '
            '"applied_strategies": ["<strategy>", ...]}.'
        )
        payload = {"message": text, "intent": semantics.intent, "slots": semantics.slots}
        return [{"role": "system", "content": system},
                {"role": "user", "content": json.dumps(payload, ensure_ascii=False)}]

    def _apply(self, text: str, rng: random.Random) -> NoiseResult:
        semantics = self.extractor.extract(text)
        layer = self.choose_layer(rng)
        strategies = self.choose_strategies(layer, rng)
        answer, reason = ask_json(
            self.llm, self._rewrite_messages(text, layer, strategies, semantics),
            operation=op.SEMANTIC_REWRITE, schema=_RewriteAnswer, max_attempts=self.settings.max_attempts,
            context={"text": text, "layer": layer, "strategies": strategies, "semantics": semantics.to_dict()},
        )
        metadata = {"requested_strategies": strategies}
        if semantics.fallback_reason:
            metadata["semantics_fallback_reason"] = semantics.fallback_reason
        if answer is None:
            metadata["fallback_reason"] = reason
            return NoiseResult(original_text=text, noisy_text=text, metadata=metadata,
                               semantics=semantics.to_dict())
        applied = [s for s in answer.applied_strategies if s in strategies] or strategies
        return NoiseResult(original_text=text, noisy_text=answer.noisy_text, layer=layer,
                           layer_index=LAYER_INDEX[layer], applied_strategies=applied, metadata=metadata,
                           semantics=semantics.to_dict())
