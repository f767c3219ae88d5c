"""The rule-based distractor: independent strategies, each with its own probability."""

from __future__ import annotations

import random

from personasim.config import DistractorConfig, RuleStrategyConfig
from personasim.distractor import rules
from personasim.distractor.base import BaseDistractor
from personasim.errors import LLMCallError
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger, UsageLog
from personasim.llm.repair import ContractViolation, ask_checked
from personasim.llm.types import Prompt
from personasim.prompts import render, template
from personasim.records import NoiseResult
from personasim.roles.contract import clean, common_problems


class DistractorModel(BaseDistractor):
    """Typos, word swaps/deletions/insertions, synonyms; `paraphrase` asks the LLM."""

    def __init__(self, config: DistractorConfig, llm_client: LLMClient | None = None, seed: int = 0,
                 usage: UsageLog | None = None, repair_rounds: int = 1) -> None:
        super().__init__(config, seed, usage)
        self.strategies = config.rule_based.strategies
        self.llm = llm_client
        self.repair_rounds = repair_rounds

    def paraphrase_prompt(self, text: str) -> Prompt:
        return Prompt(op.PARAPHRASE, [{"role": "system", "content": render("paraphrase")},
                                      {"role": "user", "content": text}],
                      offline=lambda rng: offline_paraphrase(text, rng))

    def _perturb(self, name: str, params: RuleStrategyConfig, text: str, rng: random.Random, ledger: Ledger) -> str:
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
            checked = ask_checked(self.llm, self.paraphrase_prompt(text), ledger, "distractor", self.repair_rounds,
                                  lambda reply: common_problems(clean(reply.text, context=[text]),
                                                                 reply.finish_reason, template("paraphrase").template,
                                                                 [text]))
            if checked.problem is not None:
                raise ContractViolation("distractor", *checked.problem)
            return checked.text
        raise ValueError(f"unknown rule-based strategy {name!r}")

    def _apply(self, text: str, rng: random.Random, ledger: Ledger) -> NoiseResult:
        candidates = [(n, p) for n, p in self.strategies.items() if p.probability > 0]
        if not candidates:
            return NoiseResult.clean(text, activated=True, fallback_reason="no strategy has a positive probability")
        chosen = [(n, p) for n, p in candidates if rng.random() < p.probability]
        if not chosen:
            chosen = [rng.choices(candidates, weights=[p.probability for _, p in candidates])[0]]
        noisy, applied, errors = text, [], []
        for name, params in chosen:
            try:
                changed = self._perturb(name, params, noisy, rng, ledger)
            except LLMCallError as exc:
                errors.append(f"{name}: {exc}")
                continue
            if changed.strip() and changed != noisy:
                noisy = changed
                applied.append(name)
        return NoiseResult(text, noisy, "rule_based" if applied else None, 0 if applied else None, tuple(applied),
                           activated=True, requested_strategies=tuple(n for n, _ in chosen),
                           fallback_reason=None if applied else "no strategy changed the text",
                           errors=tuple(errors))


def offline_paraphrase(text: str, rng: random.Random) -> str:
    lead = rng.choice(("I was wondering, ", "Basically, ", "To put it another way, "))
    return lead + rules.synonym_replacement(text[:1].lower() + text[1:], rng, 0.5)
