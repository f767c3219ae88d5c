"""A local Prefect server that stays between runs, so the UI keeps every run's history, logs and
artifacts: `personasim server start|stop|status`. Its database is Prefect's own default, in the
user's Prefect home; personasim notes its URL and process there (`personasim-server.json`).
`personasim run` uses it when it answers, and boots its own embedded API (gone with the run)
otherwise.

Plain Python: the command checks for it before importing Prefect.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from personasim.errors import PersonasimError
from personasim.interrupt import GRACE_S

DEFAULT_PORT = 4200
STATE = "personasim-server.json"
LOG = "personasim-server.log"


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()


def _state() -> dict[str, Any] | None:
    try:
        state = json.loads((prefect_home() / STATE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("url"), str) else None


def answering(url: str, timeout: float = 0.5) -> bool:
    """Whether a Prefect API answers at `url` (the server's root, without /api)."""
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def running() -> str | None:
    """The URL of the local server when it answers: the one `personasim server start` noted, else
    one on the default port (a `prefect server start` of the user's own)."""
    noted = _state()
    for url in ([noted["url"]] if noted else []) + [f"http://127.0.0.1:{DEFAULT_PORT}"]:
        if answering(url):
            return url
    return None


def start(port: int = DEFAULT_PORT, timeout: float = 120.0) -> str:
    """Start the server in the background (it outlives this command) and wait until it answers."""
    url = f"http://127.0.0.1:{port}"
    already = running()
    if already:
        return already
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)  # the server is the API, not a client of one
    prefect = str(Path(sys.executable).with_name("prefect"))
    with open(home / LOG, "ab") as log:
        process = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    (home / STATE).write_text(json.dumps({"url": url, "pid": process.pid}))
    deadline = time.monotonic() + timeout
    while not answering(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise PersonasimError(f"the local Prefect server did not start (see {home / LOG})")
        time.sleep(0.3)
    return url


def stop(timeout: float = 20.0) -> bool:
    """Stop the server `start` started; whether there was one."""
    noted = _state()
    if noted is None or not isinstance(noted.get("pid"), int):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already
        os.killpg(noted["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while answering(noted["url"], timeout=0.2) and time.monotonic() < deadline:
        time.sleep(0.2)
    if answering(noted["url"], timeout=0.2):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(noted["pid"], signal.SIGKILL)
    (prefect_home() / STATE).unlink(missing_ok=True)
    return True


class Watch:
    """Watches the server a run uses: when it stops answering mid-run, `noticed` is called, the run
    is stopped as on Ctrl-C (no new pair; pairs in flight get the grace to finish and are stored at
    once), and `lost` ends the command: Prefect's own client would wait on the dead API."""

    def __init__(self, server: str, noticed: Callable[[], None], lost: Callable[[], None], every_s: float = 1.0,
                 misses: int = 2) -> None:
        self.server, self.noticed, self.lost, self.every_s, self.misses = server, noticed, lost, every_s, misses
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="personasim-server-watch", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _loop(self) -> None:
        missed = 0
        while not self._done.wait(self.every_s):
            missed = 0 if answering(self.server, timeout=1.0) else missed + 1
            if missed >= self.misses:
                self.noticed()
                logging.getLogger("prefect").setLevel(logging.CRITICAL)  # its client retries into the dead API
                sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - and writes each failure there: end of the run
                os.kill(os.getpid(), signal.SIGINT)  # the run's graceful stop, as on Ctrl-C
                if not self._done.wait(GRACE_S + 1.0):
                    self.lost()
                return


def flow_run_link(server: str, flow_run_id: object) -> str:
    return f"{server}/runs/flow-run/{flow_run_id}"
