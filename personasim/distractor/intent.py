"""Intent and slot extraction: what the semantic layers must keep, blur or confuse."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.json_reply import ask_json


class _IntentAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    intent: str = Field(min_length=1)
    slots: dict[str, Any] = Field(default_factory=dict)
    confidence: float | None = Field(None, ge=0.0, le=1.0)


@dataclass
class Semantics:
    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    confidence: float | None = None
    fallback_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SYSTEM = (
    "You analyse one user message. Reply with a JSON object only: "
    '{"intent": "<snake_case intent>", "slots": {"<slot name>": "<value as written>"}, "confidence": <0..1>}. '
    "Slots are the concrete details the request depends on (topic, object, constraint, quantity, time...)."
)


class IntentSlotExtractor:
    def __init__(self, llm_client: LLMClient, max_attempts: int = 2) -> None:
        self.llm = llm_client
        self.max_attempts = max_attempts

    def extract(self, text: str) -> Semantics:
        """The message's intent and slots; `intent: unknown` with the reason if the LLM never answered well."""
        messages = [{"role": "system", "content": _SYSTEM},
                    {"role": "user", "content": json.dumps({"message": text}, ensure_ascii=False)}]
        answer, reason = ask_json(self.llm, messages, operation=op.EXTRACT_INTENT, schema=_IntentAnswer,
                                  max_attempts=self.max_attempts, context={"text": text})
        if answer is None:
            return Semantics(intent="unknown", fallback_reason=reason)
        return Semantics(intent=answer.intent, slots=answer.slots, confidence=answer.confidence)
