"""The one way the package calls an LLM: a role's client with retries, usage records and redaction."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from personasim.config import EndpointConfig
from personasim.errors import LLMCallError
from personasim.llm.retry import is_retryable, wait_retry_after_or_backoff
from personasim.llm.throttle import Throttle
from personasim.llm.types import ChatBackend, ChatRequest
from personasim.llm.usage import UsageTracker

log = logging.getLogger("personasim.llm")


def redact(text: str, endpoint: EndpointConfig) -> str:
    """Remove the endpoint's API key from text that may reach a log, a dataset or an error."""
    key = os.environ.get(endpoint.api_key_env, "")
    return text.replace(key, "***") if len(key) >= 8 else text


def describe_failure(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    kind = type(exc).__name__ + (f" (HTTP {status})" if status else "")
    return f"{kind}: {detail}" if detail else kind


class LLMClient:
    """Calls one model for one module (style_transfer, assistant, user_simulator, distractor)."""

    def __init__(self, module: str, endpoint: EndpointConfig, backend: ChatBackend, tracker: UsageTracker,
                 throttle: Throttle | None = None) -> None:
        self.module = module
        self.endpoint = endpoint
        self.backend = backend
        self.tracker = tracker
        self.throttle = throttle or Throttle()

    @property
    def model(self) -> str:
        return self.endpoint.model

    @property
    def provider(self) -> str:
        return self.backend.provider

    def complete(self, messages: list[dict[str, str]], *, operation: str, json_mode: bool = False,
                 context: Mapping[str, Any] | None = None) -> str:
        """The completion text; retries what is retryable, raises LLMCallError for the rest."""
        request = ChatRequest(messages=messages, operation=operation, model=self.endpoint.model,
                              temperature=self.endpoint.temperature, max_tokens=self.endpoint.max_tokens,
                              json_mode=json_mode, context=dict(context or {}))
        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self.endpoint.max_retries + 1),
            wait=wait_retry_after_or_backoff(maximum=self.endpoint.max_retry_wait),
            before_sleep=self._log_retry,
            reraise=True,
        )
        # What a rate limiter counts against tokens-per-minute: the prompt plus the completion budget.
        estimate = sum(len(m["content"]) for m in messages) // 4 + self.endpoint.max_tokens
        try:
            for attempt in retrying:
                with attempt, self.throttle.request(estimate):
                    started = time.perf_counter()
                    completion = self.backend.complete(request)
                    latency = time.perf_counter() - started
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear, redacted error
            reason = redact(describe_failure(exc), self.endpoint)
            raise LLMCallError(f"{self.module}.{operation} on model {self.endpoint.model!r}: {reason}") from None
        self.throttle.settle(estimate, completion.input_tokens + completion.output_tokens)
        self.tracker.record(module=self.module, operation=operation, model=completion.model,
                            provider=completion.provider, input_tokens=completion.input_tokens,
                            output_tokens=completion.output_tokens, latency_s=latency)
        return completion.text

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s on %s: attempt %d failed (%s); retrying in %.2fs", self.module, self.endpoint.model,
                    state.attempt_number, redact(describe_failure(exc), self.endpoint) if exc else "?", wait)
