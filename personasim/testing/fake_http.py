"""The fake server's HTTP side: routes under /v1 to chat, files and batches, renders answers and
API errors, and carries out the faults that are about the connection (slow, malformed, dropped)."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from personasim.testing.fake_types import OPERATION_HEADER, ApiError, Fault, HttpReply

if TYPE_CHECKING:
    from personasim.testing.fake_openai import FakeOpenAIServer


class HttpServer(ThreadingHTTPServer):
    # Read by listen() inside the constructor: setting it on the instance afterwards does nothing,
    # and the default backlog of 5 drops connections when many clients (worker processes) connect
    # at once, which stalls them for minutes in TCP retransmissions.
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away (a worker process stopped with its connections open) is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "request body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body is not a JSON object")
    return body


class Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every reply.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request logs
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [part for part in url.path.removeprefix("/v1").split("/") if part]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self._route(method, parts, dict(parse_qsl(url.query)), raw)
        except ApiError as error:
            self._send_json(error.status, error.payload)

    def _route(self, method: str, parts: list[str], query: dict[str, str], raw: bytes) -> None:
        owner, auth = self.owner, self.headers.get("Authorization")
        match method, parts:
            case "POST", ["chat", "completions"]:
                self._chat(_json_body(raw), auth)
            case "GET", ["_stats"]:  # for benchmarks in another process
                self._send_json(200, owner.stats.snapshot())
            case "GET", ["models"]:
                self._send_json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            case "POST", ["files"]:
                self._send_json(200, owner.files.upload(self.headers.get("Content-Type", ""), raw).to_json())
            case "GET", ["files"]:
                self._send_json(200, owner.files.listing(query))
            case "GET", ["files", file_id]:
                self._send_json(200, owner.files.get(file_id).to_json())
            case "GET", ["files", file_id, "content"]:
                self._send(200, owner.files.get(file_id).data, "application/octet-stream")
            case "DELETE", ["files", file_id]:
                self._send_json(200, owner.files.delete(file_id))
            case "POST", ["batches"]:
                self._send_json(200, owner.batches.create(_json_body(raw), auth))
            case "GET", ["batches"]:
                self._send_json(200, owner.batches.listing(query))
            case "GET", ["batches", batch_id]:
                self._send_json(200, owner.batches.retrieve(batch_id))
            case "POST", ["batches", batch_id, "cancel"]:
                self._send_json(200, owner.batches.cancel(batch_id))
            case _:
                raise ApiError(404, f"no route {method} {self.path}")

    def _chat(self, body: dict[str, Any], auth: str | None) -> None:
        outcome = self.owner.complete(self.headers.get(OPERATION_HEADER, ""), body, auth)
        if isinstance(outcome, HttpReply):
            self._send_json(outcome.status, outcome.body, outcome.headers)
        else:
            self._break(outcome)

    def _break(self, fault: Fault) -> None:
        """The faults that are about the connection rather than the answer."""
        if fault.kind == "slow":
            time.sleep(fault.delay)
            self.close_connection = True
        elif fault.kind == "malformed":
            self._send(200, b'{"id": "chatcmpl-x", "choices": [{"message": ', "application/json")
        else:  # drop
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)
