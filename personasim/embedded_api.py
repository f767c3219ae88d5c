"""Prefect's embedded API for a command-line run, started before anything else.

With no PREFECT_API_URL, Prefect starts a temporary server on the first API call: the command
would import the whole server (seconds of CPU, a hundred MB, only to spawn it) and then wait for
it to boot. `personasim run` instead spawns the same server (uvicorn on Prefect's app factory,
the settings Prefect gives its temporary server) as its first step and points PREFECT_API_URL
at it before Prefect is imported, so the server boots while the command imports and checks its
inputs, and the command never imports the server. Nothing here imports Prefect.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from personasim.errors import PersonasimError
from personasim.watchdog import end

PORT_IN_USE = 3  # uvicorn's exit code when it cannot bind
SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
    # Registering block types imports every installed Prefect collection first (prefect-dask
    # imports distributed: 2.2 s of a boot profiled on a loaded machine); a run's own API needs no
    # blocks, and a server started on the same database registers them at its own start.
    "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false", "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prefect_root() -> str:
    """The folder Prefect is installed in (uvicorn's --app-dir), found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise PersonasimError("prefect is not installed")
    return str(Path(spec.origin).parent.parent)


class EmbeddedAPI:
    """One temporary Prefect server for this process's run; stopped when the process exits."""

    def __init__(self) -> None:
        # The server's own output goes to a file, read only to say why it did not start: stopped
        # while it flushes, it logs tracebacks that are not the run's business.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open while the server runs; stop() closes it
        self.port = _free_port()
        self.process = self._spawn()
        atexit.register(self._let_go)  # registered before Prefect's own handlers: it runs after they flush

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", _prefect_root(), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env={**os.environ, **SERVER_ENV}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log)

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the server answers its health check. A port taken between choosing and binding
        it: another port (`url` changes; the command hands Prefect the final one)."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code == PORT_IN_USE:
                    ours = os.environ.get("PREFECT_API_URL") == self.url
                    self.port = _free_port()
                    self.process = self._spawn()
                    if ours:
                        os.environ["PREFECT_API_URL"] = self.url
                    continue
                if code is not None:
                    raise PersonasimError(f"Prefect's embedded API exited with code {code} "
                                          f"while starting: {self._last_line()}")
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise PersonasimError(f"Prefect's embedded API did not answer within {timeout_s:.0f} s")

    def _last_line(self) -> str:
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "(it said nothing)"

    def stop(self) -> None:
        """Stop the server; PREFECT_API_URL no longer points at it (processes started later, such as
        another run started from the same process, would otherwise inherit a dead URL)."""
        end(self.process, grace=5)
        self._let_go()

    def _let_go(self) -> None:
        """At the command's exit: the server is told to stop, not waited for (its own shutdown took
        0.2-0.3 s after the run was done and written); the watchdog kills it if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
        self._log.close()
        if os.environ.get("PREFECT_API_URL") == self.url:
            del os.environ["PREFECT_API_URL"]


def start_unless_configured() -> EmbeddedAPI | None:
    """Start the embedded API and point PREFECT_API_URL at it, unless a server is configured
    (PREFECT_API_URL in the environment or the active Prefect profile), or Prefect is already
    imported (its settings are read at import: it starts and manages its own server)."""
    if "prefect" in sys.modules or configured():
        return None
    api = EmbeddedAPI()
    os.environ["PREFECT_API_URL"] = api.url
    return api


def configured() -> bool:
    """Whether a Prefect API is set: PREFECT_API_URL in the environment or the active profile."""
    return bool(os.environ.get("PREFECT_API_URL")) or _profile_api_url()


def _profile_api_url() -> bool:
    """Whether the active Prefect profile names an API URL (read as Prefect reads it, without Prefect)."""
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml")).expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    return bool(profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"))
