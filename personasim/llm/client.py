"""The one way the package calls an LLM: a role's client with retries, limits, usage and redaction."""

from __future__ import annotations

import logging
import os
import time

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from personasim.config import Connection, Endpoint, ModelSpec, RetryPolicy
from personasim.errors import ContextExceeded, LLMCallError
from personasim.llm.ledger import Ledger
from personasim.llm.retry import is_context_overflow, is_transient, wait_retry_after_or_backoff
from personasim.llm.throttle import Throttle
from personasim.llm.types import ChatBackend, Completion, Prompt, Reply
from personasim.records import Usage

log = logging.getLogger("personasim.llm")


def redact(text: str, connection: Connection) -> str:
    """Remove the endpoint's API key from text that may reach a log, a dataset or an error."""
    key = os.environ.get(connection.api_key_env, "")
    return text.replace(key, "***") if len(key) >= 8 else text


def call_usage(role: str, operation: str, completion: Completion, latency: float, interaction_id: str | None,
               persona_id: str | None) -> Usage:
    """The usage record of one call, online or answered in a batch (cached tokens never above the input)."""
    return Usage(role, operation, completion.model, completion.provider, completion.input_tokens,
                 completion.output_tokens, round(latency, 6), interaction_id, persona_id=persona_id,
                 cached_tokens=min(completion.cached_tokens, completion.input_tokens), batch=completion.batch)


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

    def where(self, prompt: Prompt) -> str:
        """How an error names the call: the role, the operation and the model."""
        return f"{self.role}.{prompt.operation} on model {self.spec.model!r}"

    def complete(self, prompt: Prompt, ledger: Ledger, max_tokens: int | None = None) -> Reply:
        """The reply, its usage added to `ledger`; raises LLMCallError once retries cannot help.

        `max_tokens` overrides the model's limit for this call (a retry of a reply cut at it). A
        pair replayed in a batch run (`ledger.replay`) has its reply from the run's journal, or
        asks for it (NeedsReply) and waits for the next round.
        """
        spec = self.spec if max_tokens is None else self.spec.model_copy(update={"max_tokens": max_tokens})
        # What a rate limiter counts against tokens-per-minute: the prompt plus the completion budget.
        estimate = sum(len(m["content"]) for m in prompt.messages) // 4 + spec.max_tokens
        window = self.context_tokens
        if window is not None and estimate > window:
            raise ContextExceeded(f"{self.where(prompt)}: context_limit: about {estimate:,} tokens with the reply's "
                                  f"budget, over the {window:,}-token context")
        if ledger.replay is not None:
            completion, latency = ledger.replay.answer(self, prompt, spec, lambda: self.call(prompt, spec, estimate))
        else:
            completion, latency = self.call(prompt, spec, estimate)
        usage = self.usage(prompt.operation, completion, latency, ledger.interaction_id, ledger.persona_id)
        ledger.add(usage)
        return Reply(completion.text, completion.finish_reason, usage)

    def usage(self, operation: str, completion: Completion, latency: float, interaction_id: str | None,
              persona_id: str | None) -> Usage:
        """The usage record of one call of this role."""
        return call_usage(self.role, operation, completion, latency, interaction_id, persona_id)

    def call(self, prompt: Prompt, spec: ModelSpec, estimate: int) -> tuple[Completion, float]:
        """One online call with the run's retry policy and the endpoint's limits: the completion and
        its latency in seconds."""
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.retry.max_retries + 1),
            wait=wait_retry_after_or_backoff(maximum=self.retry.max_wait),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt, self.throttle.request(estimate):
                    started = time.perf_counter()
                    completion = self.backend.complete(prompt, spec)
                    latency = time.perf_counter() - started
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear, redacted error
            reason = redact(describe_failure(exc), self.connection)
            if is_context_overflow(exc):
                raise ContextExceeded(f"{self.where(prompt)}: context_limit: {reason}") from None
            raise LLMCallError(f"{self.where(prompt)}: {reason}", permanent=not is_transient(exc)) from None
        self.throttle.settle(estimate, completion.input_tokens + completion.output_tokens)
        return completion, latency

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s on %s: attempt %d failed (%s); retrying in %.2fs", self.role, self.spec.model,
                    state.attempt_number, redact(describe_failure(exc), self.connection) if exc else "?", wait)
