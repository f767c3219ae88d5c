"""The one way the package calls an LLM: a role's client with retries, limits, usage and redaction."""

from __future__ import annotations

import logging
import os
import time

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from personasim.config import Connection, Endpoint, RetryPolicy
from personasim.errors import ContextExceeded, LLMCallError
from personasim.llm.ledger import Ledger
from personasim.llm.retry import is_context_overflow, is_transient, wait_retry_after_or_backoff
from personasim.llm.throttle import Throttle
from personasim.llm.types import ChatBackend, Prompt, Reply
from personasim.records import Usage

log = logging.getLogger("personasim.llm")


def redact(text: str, connection: Connection) -> str:
    """Remove the endpoint's API key from text that may reach a log, a dataset or an error."""
    key = os.environ.get(connection.api_key_env, "")
    return text.replace(key, "***") if len(key) >= 8 else text


def describe_failure(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    kind = type(exc).__name__ + (f" (HTTP {status})" if status else "")
    return f"{kind}: {detail}" if detail else kind


class LLMClient:
    """Calls one model for one role (style_transfer, assistant, user_simulator, distractor)."""

    def __init__(self, endpoint: Endpoint, backend: ChatBackend, retry: RetryPolicy,
                 throttle: Throttle | None = None) -> None:
        self.role = endpoint.role
        self.spec = endpoint.model
        self.connection = endpoint.connection
        self.backend = backend
        self.retry = retry
        self.throttle = throttle or Throttle()

    @property
    def model(self) -> str:
        return self.spec.model

    @property
    def provider(self) -> str:
        return self.backend.provider

    @property
    def context_tokens(self) -> int | None:
        """The model's context window: as configured, else as the backend knows it (a local model)."""
        return self.connection.context_tokens or getattr(self.backend, "context_tokens", None)

    def complete(self, prompt: Prompt, ledger: Ledger, max_tokens: int | None = None) -> Reply:
        """The reply, its usage added to `ledger`; raises LLMCallError once retries cannot help.

        `max_tokens` overrides the model's limit for this call (a retry of a reply cut at it).
        """
        spec = self.spec if max_tokens is None else self.spec.model_copy(update={"max_tokens": max_tokens})
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.retry.max_retries + 1),
            wait=wait_retry_after_or_backoff(maximum=self.retry.max_wait),
            before_sleep=self._log_retry,
            reraise=True,
        )
        # What a rate limiter counts against tokens-per-minute: the prompt plus the completion budget.
        estimate = sum(len(m["content"]) for m in prompt.messages) // 4 + spec.max_tokens
        window = self.context_tokens
        if window is not None and estimate > window:
            raise ContextExceeded(f"{self.role}.{prompt.operation} on model {self.spec.model!r}: context_limit: about "
                                  f"{estimate:,} tokens with the reply's budget, over the {window:,}-token context")
        try:
            for attempt in retrying:
                with attempt, self.throttle.request(estimate):
                    started = time.perf_counter()
                    completion = self.backend.complete(prompt, spec)
                    latency = time.perf_counter() - started
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear, redacted error
            reason = redact(describe_failure(exc), self.connection)
            where = f"{self.role}.{prompt.operation} on model {self.spec.model!r}"
            if is_context_overflow(exc):
                raise ContextExceeded(f"{where}: context_limit: {reason}") from None
            raise LLMCallError(f"{where}: {reason}", permanent=not is_transient(exc)) from None
        self.throttle.settle(estimate, completion.input_tokens + completion.output_tokens)
        usage = Usage(self.role, prompt.operation, completion.model, completion.provider, completion.input_tokens,
                      completion.output_tokens, round(latency, 6), ledger.interaction_id,
                      persona_id=ledger.persona_id)
        ledger.add(usage)
        return Reply(completion.text, completion.finish_reason, usage)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s on %s: attempt %d failed (%s); retrying in %.2fs", self.role, self.spec.model,
                    state.attempt_number, redact(describe_failure(exc), self.connection) if exc else "?", wait)
