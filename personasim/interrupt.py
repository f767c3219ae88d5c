"""Ctrl-C and SIGTERM as people expect: the first stops the run gracefully, a second at once.

The first signal calls `on_stop` (no new pair starts) and is noted; the run then lets its pairs in
flight finish for a bounded grace, commits what is done and ends. A second signal ends the
process at once with 130 (the watchdog stops its children).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

INTERRUPTED = 130  # the exit status of a process ended by Ctrl-C, as shells report it
GRACE_S = 5.0  # after a stop, how long pairs in flight may take before they are given up


class StopRequest:
    """Whether a stop was asked for, and when."""

    def __init__(self) -> None:
        self.at: float | None = None

    @property
    def requested(self) -> bool:
        return self.at is not None

    def since(self) -> float:
        return time.monotonic() - self.at if self.at is not None else 0.0


@contextmanager
def stop_on_signals(on_stop: Callable[[], None]) -> Iterator[StopRequest]:
    """SIGINT and SIGTERM handled as above while the block runs (from the main thread only:
    elsewhere Python cannot install handlers, and the block runs as it would without)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if request.requested:
            os._exit(INTERRUPTED)
        request.at = time.monotonic()
        on_stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
