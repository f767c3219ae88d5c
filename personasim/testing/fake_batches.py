"""The Batch API of the fake server. A batch moves on lazily, when it is read (retrieved, listed,
cancelled): validating, then in_progress, then at its due time (`delay` seconds after creation) its
lines run through the chat machinery at once and it ends completed, or expired when told to. Being
driven by reads and the clock, not a thread, a test sees the same states every run."""

from __future__ import annotations

import collections
import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from personasim.testing.batch_lines import check_input, line_operation, result_line, skipped_line
from personasim.testing.fake_files import FileStore, cursor_page
from personasim.testing.fake_types import ApiError, Fault, HttpReply, ServerStats

# (operation, body, authorization, custom_id) -> the chat answer; runs one line like a request
RunLine = Callable[[str, dict[str, Any], str | None, str], HttpReply | Fault]

ENDPOINT = "/v1/chat/completions"
FINAL = ("failed", "completed", "expired", "cancelled")
TIMESTAMPS = ("in_progress_at", "expires_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
              "cancelling_at", "cancelled_at")
EXPIRED = ("batch_expired", "This request could not be executed before the completion window expired.")
CANCELLED = ("batch_cancelled", "This request was not executed because the batch was cancelled.")


@dataclass
class _Batch:
    id: str
    input_file_id: str
    metadata: dict[str, str] | None
    authorization: str | None  # the creator's, which a line's request is made with
    due: float  # time.monotonic() at which its lines run
    expire_after: int | None  # answer this many lines, then expire
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "validating"
    lines: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    errors: list[dict[str, Any]] | None = None
    times: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(TIMESTAMPS))
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    tokens: collections.Counter = field(default_factory=collections.Counter)
    output_file_id: str | None = None
    error_file_id: str | None = None

    def mark(self, status: str) -> None:
        self.status = status
        self.times[f"{status}_at"] = int(time.time())

    def to_json(self) -> dict[str, Any]:
        tokens = self.tokens
        return {"id": self.id, "object": "batch", "endpoint": ENDPOINT, "input_file_id": self.input_file_id,
                "completion_window": "24h", "status": self.status, "created_at": self.created_at, **self.times,
                "errors": {"object": "list", "data": self.errors} if self.errors else None,
                "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
                "request_counts": dict(self.counts), "metadata": self.metadata, "model": self.model,
                "usage": {"input_tokens": tokens["input"], "input_tokens_details": {"cached_tokens": tokens["cached"]},
                          "output_tokens": tokens["output"], "output_tokens_details": {"reasoning_tokens": 0},
                          "total_tokens": tokens["input"] + tokens["output"]}}


class BatchStore:
    """Batches by id; one lock, so a batch read from two threads at its due time runs once."""

    def __init__(self, files: FileStore, stats: ServerStats, run_line: RunLine, rng: random.Random, *,
                 delay: float = 0.0, max_requests: int = 50_000, max_bytes: int = 200_000_000) -> None:
        self.delay = delay
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self._files = files
        self._stats = stats
        self._run_line = run_line
        self._rng = rng
        self._batches: dict[str, _Batch] = {}
        self._slow: collections.deque[float] = collections.deque()
        self._expiring: collections.deque[int] = collections.deque()
        self._ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- control (FakeOpenAIServer's slow_batches and expire_next_batch) --------------------------
    def slow_next(self, n: int, delay: float) -> None:
        with self._lock:
            self._slow.extend([delay] * n)

    def expire_next(self, answered: int) -> None:
        with self._lock:
            self._expiring.append(answered)

    def hurry(self) -> None:
        """Every batch not yet run is due now (a slow batch a test no longer wants to wait for)."""
        with self._lock:
            for batch in self._batches.values():
                batch.due = min(batch.due, time.monotonic())

    # -- the API ------------------------------------------------------------------------------------
    def create(self, request: dict[str, Any], authorization: str | None) -> dict[str, Any]:
        """POST /batches: checks the request itself; the file's lines are checked when it is next read."""
        file_id = str(request.get("input_file_id"))
        self._files.get(file_id, param="input_file_id")
        if request.get("endpoint") != ENDPOINT:
            raise ApiError(400, f"this server runs batches of {ENDPOINT} only", param="endpoint")
        if request.get("completion_window") != "24h":
            raise ApiError(400, "completion_window must be '24h'", param="completion_window")
        with self._lock:
            delay = self._slow.popleft() if self._slow else self.delay
            expire_after = self._expiring.popleft() if self._expiring else None
            batch = _Batch(f"batch_{next(self._ids):06d}", file_id, request.get("metadata"), authorization,
                           due=time.monotonic() + delay, expire_after=expire_after)
            batch.times["expires_at"] = batch.created_at + 86_400
            self._batches[batch.id] = batch
            self._stats.batches_created += 1
            return batch.to_json()

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            return self._advance(self._get(batch_id)).to_json()

    def listing(self, query: dict[str, str]) -> dict[str, Any]:
        """GET /batches: newest first."""
        with self._lock:
            batches = [self._advance(batch).to_json() for batch in reversed(self._batches.values())]
        return cursor_page(batches, query, default_limit=20)

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """POST /batches/{id}/cancel: cancelling now, cancelled when next read; lines not run are
        cancelled. A batch that has ended (its due time passed) cannot be."""
        with self._lock:
            batch = self._advance(self._get(batch_id))
            if batch.status in FINAL:
                raise ApiError(409, f"Cannot cancel a batch with status '{batch.status}'.")
            batch.mark("cancelling")
            return batch.to_json()

    # -- moving a batch on --------------------------------------------------------------------------
    def _get(self, batch_id: str) -> _Batch:
        if batch_id not in self._batches:
            raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return self._batches[batch_id]

    def _advance(self, batch: _Batch) -> _Batch:
        """Whatever has happened to the batch by now."""
        if batch.status == "validating":
            self._validate(batch)
        if batch.status == "cancelling":
            self._finish(batch, 0, CANCELLED, "cancelled")
        elif batch.status == "in_progress" and time.monotonic() >= batch.due:
            if batch.expire_after is None:
                self._finish(batch, len(batch.lines), None, "completed")
            else:
                self._finish(batch, batch.expire_after, EXPIRED, "expired")
        return batch

    def _validate(self, batch: _Batch) -> None:
        try:
            data = self._files.get(batch.input_file_id).data
        except ApiError as error:  # deleted since the batch was created
            batch.errors = [{"code": "file_not_found", "message": str(error), "param": "input_file_id", "line": None}]
        else:
            batch.lines, batch.model, batch.errors = check_input(data, ENDPOINT, self.max_requests,
                                                                 self.max_bytes)
        if batch.errors:
            batch.lines = []
            batch.mark("failed")
        else:
            batch.counts["total"] = len(batch.lines)
            batch.mark("in_progress")

    def _finish(self, batch: _Batch, answered: int, leftover: tuple[str, str] | None, status: str) -> None:
        """Run the first `answered` lines; the rest end with the `leftover` error; write the files."""
        output: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, line in enumerate(batch.lines):
            number = f"{next(self._request_ids):08d}"
            if index >= answered and leftover:
                errors.append(skipped_line(f"batch_req_{number}", line["custom_id"], *leftover))
                continue
            outcome = self._run_line(line_operation(line), line["body"], batch.authorization, line["custom_id"])
            done = result_line(f"batch_req_{number}", f"req_{number}", line["custom_id"], outcome)
            if isinstance(outcome, HttpReply) and outcome.status == 200:
                usage = outcome.body["usage"]
                batch.tokens.update(input=usage["prompt_tokens"], output=usage["completion_tokens"],
                                    cached=usage["prompt_tokens_details"]["cached_tokens"])
                output.append(done)
            else:
                errors.append(done)
        batch.mark("finalizing")
        batch.counts.update(completed=len(output), failed=len(errors))
        batch.output_file_id = self._write(f"{batch.id}_output.jsonl", output)
        batch.error_file_id = self._write(f"{batch.id}_error.jsonl", errors)
        batch.mark(status)

    def _write(self, filename: str, lines: list[dict[str, Any]]) -> str | None:
        """A result file in an order of its own (the API does not keep the input's), or None when empty."""
        if not lines:
            return None
        self._rng.shuffle(lines)
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return self._files.add(filename, "batch_output", data).id
