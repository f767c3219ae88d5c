"""What an LLM call asks for and what it gives back, independent of the backend that serves it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request.

    `context` carries the structured inputs behind the prompt (persona features, the text to
    rewrite, chosen strategies). Remote endpoints ignore it; the offline backend writes its
    template text from it instead of parsing the prompt.
    """

    messages: list[dict[str, str]]
    operation: str
    model: str
    temperature: float
    max_tokens: int
    json_mode: bool = False
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    model: str
    provider: str


class ChatBackend(Protocol):
    provider: str

    def complete(self, request: ChatRequest) -> Completion: ...
