"""An OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks.

Scripted replies per operation, recorded requests, injected faults (status codes with
Retry-After, slow replies, malformed bodies, dropped connections), latency with jitter and an
optional requests-per-minute limit answered with 429. A `json_schema` response format is
answered with an instance of the schema (or refused with 400, as some servers do, when
`json_schema=False`). Usage reports prompt caching as OpenAI bills it, and the Files and Batch
APIs run batch lines through the same replies and faults. It speaks HTTP, so the real `openai`
client is exercised end to end.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from personasim.testing.chat_replies import (
    approx_tokens,
    chat_completion,
    content_text,
    default_reply,
    message_tokens,
    schema_instance,
)
from personasim.testing.fake_batches import BatchStore
from personasim.testing.fake_files import FileStore
from personasim.testing.fake_http import Handler, HttpServer
from personasim.testing.fake_types import (
    OPERATION_HEADER,
    Answer,
    Cut,
    Fault,
    HttpReply,
    RecordedRequest,
    ServerStats,
)
from personasim.testing.prompt_cache import PromptCache

__all__ = ["OPERATION_HEADER", "Answer", "Cut", "FakeOpenAIServer", "Fault", "RecordedRequest", "ServerStats",
           "approx_tokens", "content_text", "default_reply", "schema_instance"]


class FakeOpenAIServer:
    """Start with `with FakeOpenAIServer() as server:`; point clients at `server.base_url`."""

    def __init__(self, *, latency: float = 0.0, jitter: float = 0.0, requests_per_minute: float | None = None,
                 seed: int = 0, json_schema: bool = True, prompt_cache: bool = True, cache_min_tokens: int = 1024,
                 cache_increment: int = 128, batch_delay: float = 0.0, batch_max_requests: int = 50_000,
                 batch_max_bytes: int = 200_000_000) -> None:
        self.latency = latency
        self.json_schema = json_schema
        self.jitter = jitter
        self.requests_per_minute = requests_per_minute
        self.prompt_cache = prompt_cache
        self.requests: list[RecordedRequest] = []
        self.stats = ServerStats()
        self.record_requests = True
        self._scripts: dict[str, collections.deque[str | Cut]] = collections.defaultdict(collections.deque)
        self._responders: dict[str, Callable[[dict[str, Any]], Answer]] = {}
        self._cut_all = False
        self._faults: collections.deque[Fault] = collections.deque()
        self._chaos: dict[str, float] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counter = 0
        self._window: collections.deque[float] = collections.deque()
        self._cache = PromptCache(cache_min_tokens, cache_increment)
        self.files = FileStore(self.stats)
        self.batches = BatchStore(self.files, self.stats, self.complete, self._rng, delay=batch_delay,
                                  max_requests=batch_max_requests, max_bytes=batch_max_bytes)
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ------------------------------------------------------------------------------
    def script(self, operation: str, replies: list[str | Cut]) -> None:
        """Answer the next calls of `operation` with these texts, in order."""
        with self._lock:
            self._scripts[operation].extend(replies)

    def respond_with(self, operation: str, responder: Callable[[dict[str, Any]], Answer]) -> None:
        """Answer every call of `operation` with `responder(request_body)`: a text, a Cut text, or a Fault."""
        self._responders[operation] = responder

    def inject(self, *faults: Fault) -> None:
        """Fail the next matching requests (or batch lines), one fault each, in order."""
        with self._lock:
            self._faults.extend(faults)

    def chaos(self, **rates: float) -> None:
        """Fail requests at random, e.g. chaos(rate_limit=0.1, server_error=0.05, drop=0.02, slow=0.02,
        malformed=0.02); `slow_delay` sets how long a slow reply takes."""
        self._chaos = rates

    def cut_every_reply(self, cut: bool = True) -> None:
        """Answer every call as if the token limit cut it (finish_reason "length")."""
        self._cut_all = cut

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == operation]

    @property
    def batch_delay(self) -> float:
        """Seconds from a batch's creation to its lines running (slow_batches overrides it for some)."""
        return self.batches.delay

    @batch_delay.setter
    def batch_delay(self, delay: float) -> None:
        self.batches.delay = delay

    def slow_batches(self, n: int, delay: float) -> None:
        """The next `n` batches created run their lines `delay` seconds after creation."""
        self.batches.slow_next(n, delay)

    def expire_next_batch(self, answered: int = 0) -> None:
        """The next batch created expires at its due time with only its first `answered` lines run."""
        self.batches.expire_next(answered)

    def hurry_batches(self) -> None:
        """Every batch waiting for its due time runs when next read."""
        self.batches.hurry()

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        handler = type("Handler", (Handler,), {"owner": self})
        self._server = HttpServer(("127.0.0.1", 0), handler)
        # stop() waits for the serving loop to poll: 50 ms, not the default 0.5 s, per server a test starts
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering ----------------------------------------------------------------------------
    def complete(self, operation: str, body: dict[str, Any], auth: str | None,
                 custom_id: str | None = None) -> HttpReply | Fault:
        """One chat completion, recorded: a request over HTTP, or a batch line (`custom_id` set), which
        skips the latency and the requests-per-minute limit (batches have their own pool). A Fault
        returned is one the connection carries out (slow, malformed, drop)."""
        form = body.get("response_format") or {}
        if form.get("type") == "json_schema" and not self.json_schema:
            self._record(operation, body, auth, "400", custom_id)
            return HttpReply(400, {"error": {"message": "response_format type 'json_schema' is not supported",
                                             "type": "invalid_request_error", "param": "response_format"}})
        fault = self._next_fault(operation, rate_limited=custom_id is None)
        if custom_id is None:
            delay = self.latency + (self._rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0)
            if delay > 0:
                time.sleep(delay)
        n, reply = self._reply(operation, body) if fault is None else (0, fault)
        if isinstance(reply, Fault):
            return self._fail(reply, operation, body, auth, custom_id)
        cut = isinstance(reply, Cut) or self._cut_all
        text = reply.text if isinstance(reply, Cut) else reply
        messages = body.get("messages") or []
        tokens = message_tokens(messages)
        prompt, completion = sum(tokens), approx_tokens(text)
        model = str(body.get("model", "fake-model"))
        with self._lock:
            cached = self._cache.use(model, messages) if self.prompt_cache else 0
            self.stats.prompt_tokens += prompt
            self.stats.completion_tokens += completion
            self.stats.cached_tokens += cached
        self._record(operation, body, auth, "ok", custom_id)
        return HttpReply(200, chat_completion(f"chatcmpl-{n}", model, text, "length" if cut else "stop", prompt,
                                              completion, cached))

    def _fail(self, fault: Fault, operation: str, body: dict[str, Any], auth: str | None,
              custom_id: str | None) -> HttpReply | Fault:
        if fault.kind not in ("status", "slow", "malformed", "content_filter", "drop"):
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        self._record(operation, body, auth, str(fault.status) if fault.kind == "status" else fault.kind, custom_id)
        if fault.kind == "status":
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            message = (fault.message or f"injected {fault.status}") + (f" for credentials {auth}" if fault.echo_auth
                                                                        else "")
            return HttpReply(fault.status, {"error": {"message": message, "type": "injected"}}, headers)
        if fault.kind == "content_filter":
            return HttpReply(200, chat_completion("chatcmpl-f", str(body.get("model", "fake-model")), "",
                                                  "content_filter", 5, 0, 0))
        return fault

    def _next_fault(self, operation: str, rate_limited: bool = True) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.operation in (None, operation):
                    self._faults.remove(fault)
                    return fault
            if self.requests_per_minute and rate_limited:
                now = time.monotonic()
                while self._window and now - self._window[0] >= 60.0:
                    self._window.popleft()
                if len(self._window) >= self.requests_per_minute:
                    wait = 60.0 - (now - self._window[0])
                    return Fault("status", 429, retry_after=round(max(wait, 0.001), 3))
                self._window.append(now)
            if self._chaos:
                roll = self._rng.random()
                for kind in ("rate_limit", "server_error", "drop", "slow", "malformed"):
                    rate = self._chaos.get(kind, 0.0)
                    if roll < rate:
                        if kind == "rate_limit":
                            return Fault("status", 429, retry_after=0.05)
                        if kind == "server_error":
                            return Fault("status", 500)
                        if kind == "slow":
                            return Fault("slow", delay=self._chaos.get("slow_delay", 5.0))
                        return Fault(kind)
                    roll -= rate
        return None

    def _reply(self, operation: str, body: dict[str, Any]) -> tuple[int, Answer]:
        """The reply's number (its completion id) and the scripted, responded or default answer."""
        with self._lock:
            self._counter += 1
            n = self._counter
            scripted = self._scripts[operation].popleft() if self._scripts.get(operation) else None
        if scripted is not None:
            return n, scripted
        responder = self._responders.get(operation)
        return n, responder(body) if responder else default_reply(operation, body, n)

    def _record(self, operation: str, body: dict[str, Any], auth: str | None, answered: str,
                custom_id: str | None) -> None:
        with self._lock:
            self.stats.first_at = self.stats.first_at or time.time()
            self.stats.last_at = time.time()
            self.stats.requests += 1
            if answered == "ok":
                self.stats.ok += 1
            elif answered == "429":
                self.stats.rate_limited += 1
            else:
                self.stats.faults[answered] += 1
            if custom_id is not None:
                self.stats.batch_lines += 1
                self.stats.executed_custom_ids[custom_id] += 1
            if self.record_requests:
                self.requests.append(RecordedRequest(operation, body, auth, answered, custom_id=custom_id))
