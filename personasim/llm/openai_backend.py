"""The backend for any OpenAI-compatible endpoint, through the official `openai` client."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import openai

from personasim.config import Connection, ModelSpec
from personasim.llm.keys import resolve_api_key
from personasim.llm.retry import ContentFiltered, MalformedCompletion
from personasim.llm.types import Completion, Prompt

log = logging.getLogger("personasim.llm")

# Sent with every request so proxies, logs and test servers can tell the calls apart.
OPERATION_HEADER = "X-Personasim-Operation"


class OpenAIBackend:
    """Chat completions over HTTP. The client's own retries are off: the retry policy decides (client.py).

    A role that answers in JSON is asked for it as the connection's `structured_outputs` says: a
    `json_schema` response format (decoding constrained to the role's schema), a `json_object`,
    or nothing. An endpoint that answers 400 to a schema is asked again with `json_object`, and
    from then on for the rest of the run, with one warning; the role's validation stays behind both.
    """

    provider = "openai"

    def __init__(self, connection: Connection, model: str) -> None:
        self._client = openai.OpenAI(api_key=resolve_api_key(connection, model), base_url=connection.base_url,
                                     timeout=connection.timeout, max_retries=0)
        self._structured = connection.structured_outputs
        self._where = connection.base_url or "the OpenAI API"
        self._lock = threading.Lock()

    @property
    def client(self) -> openai.OpenAI:
        """The endpoint's client (a batch run uses its Files and Batches API)."""
        return self._client

    @property
    def where(self) -> str:
        return self._where

    def response_format(self, prompt: Prompt) -> dict[str, Any] | None:
        if not prompt.json_mode or self._structured == "off":
            return None
        if self._structured == "json_schema" and prompt.schema is not None:
            return {"type": "json_schema", "json_schema": {"name": prompt.operation, "schema": dict(prompt.schema),
                                                           "strict": prompt.strict}}
        return {"type": "json_object"}

    def body(self, prompt: Prompt, model: ModelSpec) -> dict[str, Any]:
        """The chat completion request as it goes on the wire (online, or as a batch file's line)."""
        body: dict[str, Any] = {"model": model.model, "messages": prompt.messages,
                                "temperature": model.temperature, "max_tokens": model.max_tokens}
        form = self.response_format(prompt)
        if form is not None:
            body["response_format"] = form
        return body

    def refused_schema(self, reason: str) -> None:
        """The endpoint answered 400 to a JSON schema: json_object for the rest of the run, said once."""
        with self._lock:
            warn, self._structured = self._structured == "json_schema", "json_object"
        if warn:
            log.warning("%s refused a JSON schema response format (%s); asking for json_object from now on",
                        self._where, reason.splitlines()[0][:200])

    def complete(self, prompt: Prompt, model: ModelSpec) -> Completion:
        body = self.body(prompt, model)
        form = body.get("response_format")
        try:
            raw = self._post(body, prompt)
        except openai.BadRequestError as exc:
            if form is None or form["type"] != "json_schema":
                raise
            raw = self._post({**body, "response_format": {"type": "json_object"}}, prompt)  # the refusal's cause
            self.refused_schema(str(exc))
        return parse_completion(json.loads(raw), model.model, prompt.operation)

    def _post(self, body: dict[str, Any], prompt: Prompt) -> bytes:
        # The client's generic POST (its documented way to call any endpoint; errors, timeouts and
        # status codes are still the client's) with the wire-format body we already have, read back
        # as bytes: `chat.completions.create` re-walks every message through its TypedDict
        # transform and builds a pydantic ChatCompletion, together a third of the client's CPU per call.
        raw: bytes = self._client.post("/chat/completions", cast_to=bytes, body=body,
                                       options={"headers": {OPERATION_HEADER: prompt.operation}})
        return raw

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
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    return Completion(text=text.strip(), input_tokens=_count(usage, "prompt_tokens"),
                      output_tokens=_count(usage, "completion_tokens"), model=data.get("model") or model,
                      provider=OpenAIBackend.provider, finish_reason=choice.get("finish_reason"),
                      cached_tokens=_count(details, "cached_tokens"))


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) else 0
