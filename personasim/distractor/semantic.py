"""The three-layer semantic distractor: extract intent and slots, pick a layer and strategies, rewrite."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from personasim.config import DistractorConfig
from personasim.distractor import rules
from personasim.distractor.base import BaseDistractor
from personasim.distractor.intent import IntentSlotExtractor
from personasim.layers import LAYER_GOALS, LAYER_INDEX, LAYERS
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.json_reply import ask_json
from personasim.llm.ledger import Ledger, UsageLog
from personasim.llm.types import Prompt
from personasim.prompts import render, template
from personasim.records import NoiseResult, Semantics
from personasim.rng import weighted_choice
from personasim.roles.contract import clean, common_problems, kept, normalise


class RewriteAnswer(BaseModel):
    """The JSON the rewrite asks for."""

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

    def __init__(self, config: DistractorConfig, llm_client: LLMClient, seed: int = 0,
                 usage: UsageLog | None = None) -> None:
        super().__init__(config, seed, usage)
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

    def prompt(self, text: str, layer: str, strategies: Sequence[str], semantics: Semantics) -> Prompt:
        instructions = "\n".join(f"- {s}: {LAYERS[layer][s]}" for s in strategies)
        system = render("semantic_rewrite", layer=layer, goal=LAYER_GOALS[layer], strategies=instructions)
        payload = {"message": text, "intent": semantics.intent, "slots": dict(semantics.slots)}
        schema = {"type": "object", "additionalProperties": False, "required": ["noisy_text", "applied_strategies"],
                  "properties": {"noisy_text": {"type": "string"},
                                 "applied_strategies": {"type": "array", "items": {"type": "string",
                                                                                   "enum": list(strategies)}}}}
        return Prompt(op.SEMANTIC_REWRITE, [{"role": "system", "content": system},
                                            {"role": "user", "content": json.dumps(payload, ensure_ascii=False)}],
                      offline=lambda rng: offline_rewrite(text, semantics.slots, strategies, rng), json_mode=True,
                      schema=schema, strict=True)

    def check(self, text: str, layer: str, semantics: Semantics, answer: RewriteAnswer) -> tuple[str, str] | None:
        """The contract beyond the schema: a noisy version of `text` (changed; no label, placeholder or
        echoed instructions) that, on the layer that promises it, keeps every slot."""
        context = [text, *(str(v) for v in semantics.slots.values())]
        checked = common_problems(clean(answer.noisy_text, context=context), None,
                                  template("semantic_rewrite").template, context)
        if checked.cleaned:
            checked.fail(checked.cleaned[0], "the noisy text must be the message alone")
        if normalise(answer.noisy_text) == normalise(text):
            checked.fail("unchanged", "the noisy text is the message as it was")
        if layer == "surface_noise":
            lost = [f"{k}={v!r}" for k, v in semantics.slots.items()
                    if isinstance(v, str) and not kept(v, answer.noisy_text)]
            if lost:
                checked.fail("slots_lost", f"surface noise must keep every slot; lost {', '.join(lost)}")
        return checked.problem

    def _apply(self, text: str, rng: random.Random, ledger: Ledger) -> NoiseResult:
        semantics = self.extractor.extract(text, ledger)
        layer = self.choose_layer(rng)
        strategies = self.choose_strategies(layer, rng)
        answer, reason = ask_json(self.llm, self.prompt(text, layer, strategies, semantics), RewriteAnswer,
                                  self.settings.max_attempts, ledger, "distractor",
                                  lambda a: self.check(text, layer, semantics, a))
        if answer is None:
            return NoiseResult(text, text, activated=True, requested_strategies=tuple(strategies),
                               fallback_reason=reason, semantics=semantics)
        applied = [s for s in answer.applied_strategies if s in strategies] or strategies
        return NoiseResult(text, answer.noisy_text, layer, LAYER_INDEX[layer], tuple(applied), activated=True,
                           requested_strategies=tuple(strategies), semantics=semantics)


def _drop_slots(text: str, slots: Mapping[str, object], replacement: str) -> str:
    for value in slots.values():
        if isinstance(value, str) and value:
            text = re.sub(re.escape(value), replacement, text, flags=re.I)
    return text


Rewrite = Callable[[str, Mapping[str, object], random.Random], str]
_OFFLINE: dict[str, Rewrite] = {
    "colloquial_speech": lambda t, s, r: r.choice(("so like, ", "ok so ", "ngl ")) + t[:1].lower() + t[1:],
    "incomplete_sentence": lambda t, s, r: " ".join(t.split()[: max(2, math.ceil(len(t.split()) * 0.6))]) + "...",
    "typo_misspelling": lambda t, s, r: rules.typo(t, r, 0.06),
    "punctuation_format": lambda t, s, r: re.sub(r"[.,;:!?]", "", t).lower() or t,
    "emotional_attitude": lambda t, s, r: t + r.choice((" ugh this is so frustrating!!", " I'm really excited!!")),
    "synonym_rewrite": lambda t, s, r: rules.synonym_replacement(t, r, 0.5),
    "word_segmentation": lambda t, s, r: re.sub(r"(\w+) (\w+)", r"\1\2", t, count=1),
    "negative_expression": lambda t, s, r: "I don't want anything complicated, just: " + t,
    "real_life_fragments": lambda t, s, r: r.choice(("sorry, kid yelling lol. ", "on the bus rn, ")) + t,
    "missing_slots": lambda t, s, r: _drop_slots(t, s, "it"),
    "vague_slot_values": lambda t, s, r: _drop_slots(t, s, "that thing"),
    "context_dependency": lambda t, s, r: "about the one I mentioned before: " + t,
    "unclear_priority": lambda t, s, r: t + " or maybe something else matters more, not sure what first",
    "multi_intent": lambda t, s, r: t + " also, can you recommend a good book on it?",
    "intent_ambiguity": lambda t, s, r: (" ".join(t.split()[:4]) + "... help?"),
    "self_contradiction": lambda t, s, r: t + " keep it short. actually no, give me every detail",
    "mind_changing": lambda t, s, r: t + " wait, never mind, I'd rather ask about something related",
}


def offline_rewrite(text: str, slots: Mapping[str, object], strategies: Sequence[str], rng: random.Random) -> str:
    """Each strategy applied by rule, answered as the JSON a model would give."""
    for name in strategies:
        text = _OFFLINE[name](text, slots, rng) or text
    return json.dumps({"noisy_text": text, "applied_strategies": list(strategies)})
