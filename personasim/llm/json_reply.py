"""Ask an LLM for JSON: validated against a pydantic model and the caller's own check, asked again
with the reason when it does not fit (see personasim.roles.contract)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from personasim.errors import LLMCallError
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger
from personasim.llm.repair import Checked, ask_checked
from personasim.llm.types import Prompt, Reply

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


def ask_json(client: LLMClient, prompt: Prompt, schema: type[T], max_attempts: int, ledger: Ledger, role: str,
             check: Callable[[T], tuple[str, str] | None] | None = None) -> tuple[T | None, str | None]:
    """(valid answer, None) or (None, why every attempt failed). Never raises for a bad answer."""
    answer: list[T] = []

    def judge(reply: Reply) -> Checked:
        checked = Checked(reply.text)
        try:
            data = parse_json_object(reply.text)
        except ValueError as exc:
            return checked.fail("malformed_json", f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
        if not isinstance(data, dict):
            return checked.fail("schema", "the reply is JSON but not an object")
        try:
            parsed = schema.model_validate(data)
        except ValidationError as exc:
            return checked.fail("schema", str(exc).splitlines()[0][:160] + ": " + exc.errors()[0]["msg"])
        problem = check(parsed) if check else None
        if problem:
            return checked.fail(*problem)
        answer[:] = [parsed]
        return checked

    try:
        checked = ask_checked(client, prompt, ledger, role, max_attempts - 1, judge)
    except LLMCallError as exc:
        return None, str(exc)
    if checked.problem is None:
        return answer[0], None
    reason, detail = checked.problem
    what = "invalid JSON answer" if reason in ("malformed_json", "schema") else "a reply that breaks the contract"
    return None, f"{what} after {max_attempts} attempt(s): {reason}: {detail}"
