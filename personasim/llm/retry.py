"""Which LLM failures are worth retrying, and how long to wait before the next try."""

from __future__ import annotations

import email.utils
import json
import random
import re
import time

import openai
from tenacity import RetryCallState


class MalformedCompletion(Exception):
    """The endpoint answered 2xx but the body held no usable completion."""


class ContentFiltered(Exception):
    """The endpoint's content filter stopped the reply: asking again gets the same answer."""


_TRANSIENT = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APIConnectionError,  # includes APITimeoutError and dropped connections
    openai.APIResponseValidationError,
    json.JSONDecodeError,
    MalformedCompletion,
)


_CONTEXT = re.compile(r"context (?:length|size|window)|maximum context|exceeds the available context|too many tokens|"
                      r"prompt is too long|reduce the length", re.I)


def is_context_overflow(exc: BaseException) -> bool:
    """A 400 (or 413) saying the request does not fit the model's context (OpenAI, vLLM, llama.cpp, Ollama)."""
    return isinstance(exc, openai.APIStatusError) and says_context_overflow(exc.status_code, str(exc))


def says_context_overflow(status: int, message: str) -> bool:
    return status in (400, 413) and bool(_CONTEXT.search(message))


def is_transient_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


def is_transient(exc: BaseException) -> bool:
    """429, 408, 5xx, timeouts, dropped connections and malformed bodies: worth another try.

    Everything else (400, 401, 403, 404, 422, context length, content filter) is permanent.
    """
    if isinstance(exc, openai.APIStatusError):
        return is_transient_status(exc.status_code)
    return isinstance(exc, _TRANSIENT)


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """The server's Retry-After (or retry-after-ms) in seconds, if the failure carried one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else max(0.0, email.utils.mktime_tz(parsed) - time.time())


class wait_retry_after_or_backoff:  # noqa: N801 - named like tenacity's own wait strategies
    """Honour Retry-After when the server sends one, else exponential backoff with jitter."""

    def __init__(self, initial: float = 0.5, maximum: float = 60.0) -> None:
        self.initial = initial
        self.maximum = maximum

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = retry_after_seconds(exc)
        if hinted is not None:
            return min(hinted, self.maximum)
        backoff = self.initial * 2 ** (state.attempt_number - 1)
        return min(self.maximum, backoff + random.uniform(0, self.initial))
