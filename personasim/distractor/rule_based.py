"""The rule-based distractor: independent strategies, each with its own probability."""

from __future__ import annotations

import random

from personasim.config import DistractorConfig, RuleStrategyConfig
from personasim.distractor import rules
from personasim.distractor.base import BaseDistractor
from personasim.distractor.results import NoiseResult
from personasim.errors import LLMCallError
from personasim.llm import operations as op
from personasim.llm.client import LLMClient


class DistractorModel(BaseDistractor):
    """Typos, word swaps/deletions/insertions, synonyms; `paraphrase` asks the LLM."""

    def __init__(self, config: DistractorConfig, llm_client: LLMClient | None = None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.strategies = config.rule_based.strategies
        self.llm = llm_client

    def _perturb(self, name: str, params: RuleStrategyConfig, text: str, rng: random.Random) -> str:
        if name == "typo":
            return rules.typo(text, rng, params.intensity)
        if name == "word_swap":
            return rules.word_swap(text, rng, params.num_swaps)
        if name == "word_deletion":
            return rules.word_deletion(text, rng, params.deletion_rate)
        if name == "word_insertion":
            return rules.word_insertion(text, rng, params.insertion_rate)
        if name == "synonym_replacement":
            return rules.synonym_replacement(text, rng, params.replacement_rate)
        if name == "paraphrase":
            if self.llm is None:
                return text
            messages = [
                {"role": "system", "content": "Paraphrase the user's message. Keep its meaning and its voice. "
                                              "Reply with the paraphrase only."},
                {"role": "user", "content": text},
            ]
            return self.llm.complete(messages, operation=op.PARAPHRASE, context={"text": text}) or text
        raise ValueError(f"unknown rule-based strategy {name!r}")

    def _apply(self, text: str, rng: random.Random) -> NoiseResult:
        candidates = [(n, p) for n, p in self.strategies.items() if p.probability > 0]
        if not candidates:
            return NoiseResult.clean(text, activated=True, reason="no strategy has a positive probability")
        chosen = [(n, p) for n, p in candidates if rng.random() < p.probability]
        if not chosen:
            chosen = [rng.choices(candidates, weights=[p.probability for _, p in candidates])[0]]
        noisy, applied, errors = text, [], []
        for name, params in chosen:
            try:
                changed = self._perturb(name, params, noisy, rng)
            except LLMCallError as exc:
                errors.append(f"{name}: {exc}")
                continue
            if changed.strip() and changed != noisy:
                noisy = changed
                applied.append(name)
        metadata = {"errors": errors} if errors else {}
        return NoiseResult(original_text=text, noisy_text=noisy, layer="rule_based" if applied else None,
                           layer_index=0 if applied else None, applied_strategies=applied, metadata=metadata)
