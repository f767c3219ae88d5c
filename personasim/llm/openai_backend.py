"""The backend for any OpenAI-compatible endpoint, through the official `openai` client."""

from __future__ import annotations

import json
from typing import Any

import openai

from personasim.config import Connection, ModelSpec
from personasim.llm.keys import resolve_api_key
from personasim.llm.retry import ContentFiltered, MalformedCompletion
from personasim.llm.types import Completion, Prompt

# Sent with every request so proxies, logs and test servers can tell the calls apart.
OPERATION_HEADER = "X-Personasim-Operation"


class OpenAIBackend:
    """Chat completions over HTTP. The client's own retries are off: the retry policy decides (client.py)."""

    provider = "openai"

    def __init__(self, connection: Connection, model: str) -> None:
        self._client = openai.OpenAI(api_key=resolve_api_key(connection, model), base_url=connection.base_url,
                                     timeout=connection.timeout, max_retries=0)

    def complete(self, prompt: Prompt, model: ModelSpec) -> Completion:
        body: dict[str, Any] = {"model": model.model, "messages": prompt.messages,
                                "temperature": model.temperature, "max_tokens": model.max_tokens}
        if prompt.json_mode:
            body["response_format"] = {"type": "json_object"}
        # The client's generic POST (its documented way to call any endpoint; errors, timeouts and
        # status codes are still the client's) with the wire-format body we already have, read back
        # as bytes: `chat.completions.create` re-walks every message through its TypedDict
        # transform and builds a pydantic ChatCompletion, together a third of the client's CPU per call.
        raw = self._client.post("/chat/completions", cast_to=bytes, body=body,
                                options={"headers": {OPERATION_HEADER: prompt.operation}})
        return parse_completion(json.loads(raw), model.model, prompt.operation)

    def close(self) -> None:
        self._client.close()


def parse_completion(data: Any, model: str, operation: str) -> Completion:
    """A chat completion body as the wire has it; a body without usable text is MalformedCompletion."""
    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    if choice.get("finish_reason") == "content_filter":
        raise ContentFiltered(f"the endpoint's content filter stopped the reply to {operation}")
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise MalformedCompletion(f"no completion text in the response to {operation}")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return Completion(text=text.strip(), input_tokens=_count(usage, "prompt_tokens"),
                      output_tokens=_count(usage, "completion_tokens"), model=data.get("model") or model,
                      provider=OpenAIBackend.provider, finish_reason=choice.get("finish_reason"))


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) else 0
