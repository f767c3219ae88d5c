"""An OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks.

Scripted replies per operation, recorded requests, injected faults (status codes with
Retry-After, slow replies, malformed bodies, dropped connections), latency with jitter and an
optional requests-per-minute limit answered with 429. A `json_schema` response format is
answered with an instance of the schema (or refused with 400, as some servers do, when
`json_schema=False`). It speaks HTTP, so the real `openai` client is exercised end to end.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@dataclass
class RecordedRequest:
    operation: str
    body: dict[str, Any]
    authorization: str | None
    answered: str  # "ok", the status code, or the fault kind
    at: float = field(default_factory=time.monotonic)


@dataclass
class ServerStats:
    requests: int = 0
    ok: int = 0
    rate_limited: int = 0
    faults: collections.Counter = field(default_factory=collections.Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_at: float | None = None  # wall-clock time of the first and the last request (benchmarks)
    last_at: float | None = None


def approx_tokens(text: str) -> int:
    return max(1, len(text.split()))


def content_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts (both are the API's)."""
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def _user_payload(body: dict[str, Any]) -> tuple[str, Any]:
    """The last user message, and its JSON payload when the client sent JSON."""
    messages = body.get("messages") or []
    text = next((content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    try:
        return text, json.loads(text)
    except (TypeError, ValueError):
        return text, None


def schema_instance(schema: Any) -> Any:
    """A value valid against a (simple) JSON schema: what a server decoding to it would give."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: schema_instance(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [schema_instance(schema.get("items"))]
    if kind == "integer":
        low, high = schema.get("minimum", 1), schema.get("maximum", 5)
        return (low + high) // 2
    if kind == "number":
        return schema.get("minimum", 0.5)
    if kind == "boolean":
        return True
    return "value"


def default_reply(operation: str, body: dict[str, Any], n: int) -> str:
    """Plausible text for each personasim operation, so unscripted calls succeed; under a JSON
    schema response format, an instance of the schema for an operation it knows no reply for."""
    text, payload = _user_payload(body)
    payload = payload if isinstance(payload, dict) else {}
    if operation == "rewrite_query":
        return f"{payload.get('query', text)} (in my own words)"
    if operation == "respond":
        return f"[{body.get('model')}] answer {n}: here is what to do about: {text[:80]}"
    if operation == "follow_up":
        return f"follow-up {n}: could you expand on that part?"
    if operation == "extract_intent":
        return json.dumps({"intent": "request_help", "slots": {"topic": text[:30]}, "confidence": 0.9})
    if operation == "semantic_rewrite":
        return json.dumps({"noisy_text": f"{payload.get('message', text)} umm idk", "applied_strategies": []})
    if operation == "paraphrase":
        return f"In other words, {text}"
    if operation == "formulate_system_prompt":
        traits = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in list((payload.get("persona") or {}).items())[:6])
        return (f"You are assisting a person with this profile ({traits}). Match their tone and technical level, "
                f"keep your answers to the length they prefer, and check what they already know before you go "
                f"into detail (prompt {n}).")
    form = body.get("response_format") or {}
    if form.get("type") == "json_schema":
        return json.dumps(schema_instance((form.get("json_schema") or {}).get("schema")))
    return f"reply {n}"


class _Server(ThreadingHTTPServer):
    # Read by listen() inside the constructor: setting it on the instance afterwards does nothing,
    # and the default backlog of 5 drops connections when many clients (worker processes) connect
    # at once, which stalls them for minutes in TCP retransmissions.
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away (a worker process stopped with its connections open) is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeOpenAIServer:
    """Start with `with FakeOpenAIServer() as server:`; point clients at `server.base_url`."""

    def __init__(self, *, latency: float = 0.0, jitter: float = 0.0, requests_per_minute: float | None = None,
                 seed: int = 0, json_schema: bool = True) -> None:
        self.latency = latency
        self.json_schema = json_schema
        self.jitter = jitter
        self.requests_per_minute = requests_per_minute
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
        self._server: ThreadingHTTPServer | None = None
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
        """Fail the next matching requests, one fault each, in order."""
        with self._lock:
            self._faults.extend(faults)

    def chaos(self, **rates: float) -> None:
        """Fail requests at random, e.g. chaos(rate_limit=0.1, server_error=0.05, drop=0.02, slow=0.02,
        malformed=0.02); `slow_delay` sets how long a slow reply takes."""
        self._chaos = rates

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == operation]

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)
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

    # -- request handling ---------------------------------------------------------------------
    def _next_fault(self, operation: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.operation in (None, operation):
                    self._faults.remove(fault)
                    return fault
            if self.requests_per_minute:
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

    def cut_every_reply(self, cut: bool = True) -> None:
        """Answer every call as if the token limit cut it (finish_reason "length")."""
        self._cut_all = cut

    def _reply(self, operation: str, body: dict[str, Any]) -> Answer:
        with self._lock:
            self._counter += 1
            n = self._counter
            scripted = self._scripts[operation].popleft() if self._scripts.get(operation) else None
        if scripted is not None:
            return scripted
        responder = self._responders.get(operation)
        return responder(body) if responder else default_reply(operation, body, n)

    def _record(self, operation: str, body: dict[str, Any], auth: str | None, answered: str) -> None:
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
            if self.record_requests:
                self.requests.append(RecordedRequest(operation, body, auth, answered))


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every reply.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request logs
        return

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/").endswith("/_stats"):  # for benchmarks in another process
            stats = self.owner.stats
            self._send_json(200, {"requests": stats.requests, "ok": stats.ok, "rate_limited": stats.rate_limited,
                                  "faults": dict(stats.faults), "prompt_tokens": stats.prompt_tokens,
                                  "completion_tokens": stats.completion_tokens, "first_at": stats.first_at,
                                  "last_at": stats.last_at})
        elif self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802
        owner = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        operation = self.headers.get(OPERATION_HEADER, "")
        auth = self.headers.get("Authorization")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        form = body.get("response_format") or {}
        if form.get("type") == "json_schema" and not owner.json_schema:
            owner._record(operation, body, auth, "400")
            self._send_json(400, {"error": {"message": "response_format type 'json_schema' is not supported",
                                            "type": "invalid_request_error", "param": "response_format"}})
            return
        fault = owner._next_fault(operation)
        delay = owner.latency + (owner._rng.uniform(-owner.jitter, owner.jitter) if owner.jitter else 0.0)
        if delay > 0:
            time.sleep(delay)
        reply = owner._reply(operation, body) if fault is None else fault
        if isinstance(reply, Fault):
            self._fail(reply, operation, body, auth)
            return
        cut = isinstance(reply, Cut) or owner._cut_all
        text = reply.text if isinstance(reply, Cut) else reply
        prompt = sum(approx_tokens(content_text(m.get("content"))) for m in body.get("messages") or [])
        completion = approx_tokens(text)
        with owner._lock:
            owner.stats.prompt_tokens += prompt
            owner.stats.completion_tokens += completion
        owner._record(operation, body, auth, "ok")
        self._send_json(200, {
            "id": f"chatcmpl-{owner._counter}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "finish_reason": "length" if cut else "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        })

    def _fail(self, fault: Fault, operation: str, body: dict[str, Any], auth: str | None) -> None:
        owner = self.owner
        if fault.kind == "status":
            owner._record(operation, body, auth, str(fault.status))
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            message = (fault.message or f"injected {fault.status}") + (f" for credentials {auth}" if fault.echo_auth
                                                                        else "")
            self._send_json(fault.status, {"error": {"message": message, "type": "injected"}}, headers)
        elif fault.kind == "slow":
            owner._record(operation, body, auth, "slow")
            time.sleep(fault.delay)
            self.close_connection = True
        elif fault.kind == "malformed":
            owner._record(operation, body, auth, "malformed")
            data = b'{"id": "chatcmpl-x", "choices": [{"message": '
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif fault.kind == "content_filter":
            owner._record(operation, body, auth, "content_filter")
            self._send_json(200, {"id": "chatcmpl-f", "object": "chat.completion", "created": int(time.time()),
                                  "model": body.get("model", "fake-model"),
                                  "choices": [{"index": 0, "finish_reason": "content_filter",
                                               "message": {"role": "assistant", "content": ""}}],
                                  "usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}})
        elif fault.kind == "drop":
            owner._record(operation, body, auth, "drop")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            raise ValueError(f"unknown fault kind {fault.kind!r}")

