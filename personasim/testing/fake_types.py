"""The fake server's vocabulary: what a test injects (Fault, Cut), what a request is answered with,
and what a test reads back (RecordedRequest, ServerStats)."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

OPERATION_HEADER = "x-personasim-operation"


@dataclass
class Fault:
    """One injected failure. kind: status | slow | malformed | drop | content_filter."""

    kind: str
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    operation: str | None = None  # only requests of this operation trigger it
    echo_auth: bool = False  # a careless server that repeats the Authorization header in its error
    message: str | None = None  # the error's message (default: "injected <status>")


@dataclass(frozen=True)
class Cut:
    """A reply cut at the token limit: `text`, with finish_reason "length"."""

    text: str


Answer = str | Cut | Fault


@dataclass(frozen=True)
class HttpReply:
    """A chat request's answer when it got an HTTP answer, so the socket handler and a batch line
    (which has no socket) can both render it."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An API error the handler sends as the API's envelope, raised where the mistake is found."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.payload = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


@dataclass
class RecordedRequest:
    operation: str
    body: dict[str, Any]
    authorization: str | None
    answered: str  # "ok", the status code, or the fault kind
    at: float = field(default_factory=time.monotonic)
    custom_id: str | None = None  # set for a batch line


@dataclass
class ServerStats:
    requests: int = 0  # chat requests and executed batch lines: what was paid for
    ok: int = 0
    rate_limited: int = 0
    faults: collections.Counter = field(default_factory=collections.Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    first_at: float | None = None  # wall-clock time of the first and the last request (benchmarks)
    last_at: float | None = None
    batch_lines: int = 0  # executed ones; expired and cancelled lines never ran
    batches_created: int = 0
    files_uploaded: int = 0
    executed_custom_ids: collections.Counter = field(default_factory=collections.Counter)

    def snapshot(self) -> dict[str, Any]:
        """The JSON `/_stats` answers, for benchmarks in another process."""
        return {"requests": self.requests, "ok": self.ok, "rate_limited": self.rate_limited,
                "faults": dict(self.faults), "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cached_tokens": self.cached_tokens,
                "first_at": self.first_at, "last_at": self.last_at, "batch_lines": self.batch_lines,
                "batches_created": self.batches_created, "files_uploaded": self.files_uploaded,
                "executed_custom_ids": dict(self.executed_custom_ids)}
