"""Ask an LLM for JSON, validate it against a pydantic model, and ask again for answers that do not fit."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from personasim.errors import LLMCallError
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger
from personasim.llm.types import Prompt

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S | re.I)


def parse_json_object(text: str) -> Any:
    """The JSON object in a reply, tolerating Markdown fences and chatter around the braces."""
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start == -1 or end <= start:
            raise
        return json.loads(text[start:end + 1])


def ask_json(client: LLMClient, prompt: Prompt, schema: type[T], max_attempts: int,
             ledger: Ledger) -> tuple[T | None, str | None]:
    """(validated answer, None) or (None, why every attempt failed). Never raises for a bad answer."""
    reason = None
    for attempt in range(1, max_attempts + 1):
        try:
            text = client.complete(prompt, ledger).text
        except LLMCallError as exc:
            return None, str(exc)
        try:
            data = parse_json_object(text)
            if not isinstance(data, dict):
                raise ValueError("the reply is JSON but not an object")
            return schema.model_validate(data), None
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0][:200]
            reason = f"invalid JSON answer after {attempt} attempt(s): {type(exc).__name__}: {first}"
    return None, reason
