"""Client-side limits per endpoint, shared by every role and thread of a run.

Requests per minute are paced (one slot every 60/rpm seconds) rather than burst, so a server
enforcing the same limit over a sliding window is never pushed over it. Tokens per minute are a
bucket charged with an estimate before the call and corrected with the real usage after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Throttle:
    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 max_concurrent: int | None = None) -> None:
        self._interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._tpm = tokens_per_minute
        self._tokens = float(tokens_per_minute or 0)
        self._refilled = time.monotonic()
        self._next_slot = 0.0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrent) if max_concurrent else None

    def _wait_for_request_slot(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        if slot > now:
            time.sleep(slot - now)

    def _wait_for_tokens(self, estimate: int) -> None:
        assert self._tpm is not None
        need = min(float(estimate), self._tpm)  # a call larger than the budget still goes, alone
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self._tpm, self._tokens + (now - self._refilled) * self._tpm / 60.0)
                self._refilled = now
                if self._tokens >= need:
                    self._tokens -= estimate
                    return
                wait = (need - self._tokens) * 60.0 / self._tpm
            time.sleep(wait)

    def settle(self, estimate: int, actual: int) -> None:
        """Correct the token bucket once the real usage is known."""
        if self._tpm:
            with self._lock:
                self._tokens -= actual - estimate

    @contextmanager
    def request(self, estimated_tokens: int) -> Iterator[None]:
        """Hold a concurrency slot for the call and wait for its rate-limit turn."""
        if self._slots:
            self._slots.acquire()
        try:
            if self._tpm:
                self._wait_for_tokens(estimated_tokens)
            if self._interval:
                self._wait_for_request_slot()
            yield
        finally:
            if self._slots:
                self._slots.release()
