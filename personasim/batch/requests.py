"""What a batch run asks and gets back: one request per pair per round, and its answer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from personasim.errors import ContextExceeded, LLMCallError
from personasim.llm.types import ChatMessage, Completion


def custom_id_for(interaction_id: str, seq: int, operation: str) -> str:
    """The batch line's id: unique in the run, and it says which pair, call and operation it is."""
    return f"{interaction_id}#{seq}|{operation}"


def request_hash(model: str, operation: str, messages: Sequence[ChatMessage]) -> str:
    """What a call asks, whatever response format the endpoint is asked for it in."""
    text = json.dumps([model, operation, list(messages)], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class BatchRequest:
    custom_id: str
    interaction_id: str
    seq: int
    request_hash: str
    endpoint: str
    model: str
    module: str
    operation: str
    persona_id: str | None
    body: dict[str, Any]
    tries: int = 0


@dataclass(frozen=True)
class SentLine:
    """A request an upload carries, as its batch's results are read: what to book, retry or ask
    again, without its body (a round's bodies can be gigabytes)."""

    custom_id: str
    interaction_id: str
    model: str
    module: str
    operation: str
    persona_id: str | None
    tries: int
    response_type: str | None  # the body's response_format type: a 400 to "json_schema" refuses the schema


class NeedsReply(BaseException):  # noqa: N818 - not an error: the pair waits for its next reply
    """A replayed pair reached a call the journal has no answer for: it waits for the next round.

    A BaseException, like KeyboardInterrupt: no retry loop or error handler on the way catches it.
    """

    def __init__(self, custom_id: str) -> None:
        super().__init__(custom_id)
        self.custom_id = custom_id


@dataclass(frozen=True)
class Answer:
    """A call's reply (text, why it ended, tokens) or its failure, as the journal keeps it."""

    text: str | None = None
    finish_reason: str | None = None
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None
    provider: str = "openai"
    latency_s: float = 0.0
    batch: bool = True
    error: str | None = None
    permanent: bool = False
    context: bool = False  # the error says the request does not fit the model's context

    @classmethod
    def of(cls, completion: Completion, latency_s: float) -> Answer:
        return cls(completion.text, completion.finish_reason, completion.input_tokens, completion.cached_tokens,
                   completion.output_tokens, completion.model, completion.provider, round(latency_s, 6),
                   completion.batch)

    @classmethod
    def failed(cls, reason: str, *, permanent: bool, context: bool = False, batch: bool = True) -> Answer:
        return cls(error=reason, permanent=permanent, context=context, batch=batch)

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Answer:
        return cls(**json.loads(text))

    def completion(self, where: str, model: str) -> Completion:
        """The reply as the client's backend would have given it; the failure as the client raises it."""
        if self.error is not None:
            if self.context:
                raise ContextExceeded(f"{where}: context_limit: {self.error}")
            raise LLMCallError(f"{where}: {self.error}", permanent=self.permanent)
        return Completion(self.text or "", self.input_tokens, self.output_tokens, self.model or model, self.provider,
                          self.finish_reason, self.cached_tokens, self.batch)
