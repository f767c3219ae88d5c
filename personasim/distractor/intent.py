"""Intent and slot extraction: what the semantic layers must keep, blur or confuse."""

from __future__ import annotations

import json
import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.json_reply import ask_json
from personasim.llm.ledger import Ledger
from personasim.llm.types import Prompt
from personasim.prompts import render
from personasim.records import Semantics
from personasim.roles.persona_text import keywords

# What the extractor's JSON must be, for endpoints that decode to a schema (slots are free-form:
# not OpenAI-strict)
INTENT_SCHEMA = {"type": "object", "properties": {
    "intent": {"type": "string"},
    "slots": {"type": "object", "additionalProperties": {"type": "string"}},
    "confidence": {"type": "number", "minimum": 0, "maximum": 1}}, "required": ["intent", "slots", "confidence"]}


class IntentAnswer(BaseModel):
    """The JSON the extractor asks for."""

    model_config = ConfigDict(extra="ignore")
    intent: str = Field(min_length=1)
    slots: dict[str, Any] = Field(default_factory=dict)
    confidence: float | None = Field(None, ge=0.0, le=1.0)


class IntentSlotExtractor:
    def __init__(self, llm_client: LLMClient, max_attempts: int = 2) -> None:
        self.llm = llm_client
        self.max_attempts = max_attempts

    def prompt(self, text: str) -> Prompt:
        return Prompt(op.EXTRACT_INTENT, [
            {"role": "system", "content": render("extract_intent")},
            {"role": "user", "content": json.dumps({"message": text}, ensure_ascii=False)},
        ], offline=lambda rng: offline_intent(text, rng), json_mode=True, schema=INTENT_SCHEMA)

    def extract(self, text: str, ledger: Ledger | None = None) -> Semantics:
        """The message's intent and slots; `intent: unknown` with the reason if the LLM never answered well."""
        answer, reason = ask_json(self.llm, self.prompt(text), IntentAnswer, self.max_attempts, ledger or Ledger(),
                                  "distractor")
        if answer is None:
            return Semantics(intent="unknown", fallback_reason=reason)
        return Semantics(intent=answer.intent, slots=answer.slots, confidence=answer.confidence)


_INTENT_WORDS = ((("fix", "error", "bug", "broken", "fail"), "troubleshoot"),
                 (("compare", " vs ", "versus", "better"), "compare"),
                 (("write", "create", "build", "make", "generate"), "create"),
                 (("how",), "how_to"), (("what", "why", "explain"), "explain"))


def offline_intent(text: str, rng: random.Random) -> str:
    lower = text.lower()
    intent = next((name for words, name in _INTENT_WORDS if any(w in lower for w in words)), "request_help")
    slots = dict(zip(("topic", "object", "constraint"), keywords(text), strict=False))
    return json.dumps({"intent": intent, "slots": slots, "confidence": 0.6})
