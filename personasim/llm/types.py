"""What a role asks a model and what comes back, whatever backend serves it."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from personasim.config import ModelSpec
from personasim.records import Usage

ChatMessage = dict[str, str]


@dataclass(frozen=True)
class Prompt:
    """One chat request from a role.

    `offline` is the role's own stand-in answer, written from the role's inputs: the offline
    backend calls it instead of a model, so the pipeline runs end to end without a key. A role
    that answers in JSON gives its `schema` (a JSON Schema): endpoints that constrain decoding to
    a schema are asked to (see OpenAIBackend).
    """

    operation: str
    messages: list[ChatMessage]
    offline: Callable[[random.Random], str]
    json_mode: bool = False
    schema: Mapping[str, Any] | None = None
    strict: bool = False  # the schema meets OpenAI's strict rules (every property required, none extra)


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    model: str
    provider: str
    finish_reason: str | None = None
    cached_tokens: int = 0
    batch: bool = False  # answered through a batch API


@dataclass(frozen=True)
class Reply:
    """A completion as the role sees it: the text, why it ended, and the call's usage record."""

    text: str
    finish_reason: str | None
    usage: Usage


class ChatBackend(Protocol):
    provider: str

    def complete(self, prompt: Prompt, model: ModelSpec) -> Completion: ...

    def close(self) -> None: ...
