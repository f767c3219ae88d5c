"""The backend for any OpenAI-compatible endpoint, through the official `openai` client."""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletion

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
        # The client's generic POST (its documented way to call any endpoint) with the wire-format
        # body we already have: `chat.completions.create` would re-walk every message through its
        # TypedDict transform, a quarter of this package's CPU per call in profiles.
        response = self._client.post("/chat/completions", cast_to=ChatCompletion, body=body,
                                     options={"headers": {OPERATION_HEADER: prompt.operation}})
        choices = getattr(response, "choices", None)
        if choices and choices[0].finish_reason == "content_filter":
            raise ContentFiltered(f"the endpoint's content filter stopped the reply to {prompt.operation}")
        if not choices or choices[0].message is None or not (choices[0].message.content or "").strip():
            raise MalformedCompletion(f"no completion text in the response to {prompt.operation}")
        usage = response.usage
        return Completion(
            text=(choices[0].message.content or "").strip(),
            input_tokens=(usage.prompt_tokens or 0) if usage else 0,
            output_tokens=(usage.completion_tokens or 0) if usage else 0,
            model=response.model or model.model,
            provider=self.provider,
            finish_reason=choices[0].finish_reason,
        )

    def close(self) -> None:
        self._client.close()
