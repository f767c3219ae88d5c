"""Shared fixtures: a local OpenAI-compatible server and configs that point at it."""

from __future__ import annotations

import os

import pytest

from personasim.cli import RUN_DEFAULTS

for _name, _value in RUN_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

from personasim.testing import FakeOpenAIServer, server_config

PERSONA = {"role": "engineer", "communication_style": "casual", "technical_level": "advanced",
           "query_length_pref": "concise", "tone": "friendly"}


@pytest.fixture
def llm_server():
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def remote_config(llm_server, monkeypatch):
    """Builds a config dict whose every role talks to `llm_server` over HTTP."""
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-0123456789abcdef")

    def build(*, distractor: dict | None = None, generation: dict | None = None, llm: dict | None = None,
              **endpoint) -> dict:
        cfg = server_config(llm_server.base_url, **endpoint)
        cfg["llm"].update(llm or {})
        return {"seed": 7, **cfg, "distractor": distractor if distractor is not None else {"enabled": False},
                "generation": generation or {}}

    return build


@pytest.fixture(scope="session")
def prefect_harness():
    """Prefect's embedded API, started once for the whole session (it costs seconds to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def write_pairs(path, n, *, prefix="p", queries_per_persona=1):
    """A JSONL file of n persona rows, each with `queries_per_persona` queries."""
    import json

    with open(path, "w") as handle:
        for i in range(n):
            queries = [{"query_id": f"q{j}", "original_query": f"question {j} from {prefix}{i}"}
                       for j in range(queries_per_persona)]
            handle.write(json.dumps({"persona_id": f"{prefix}{i}", "persona_features": PERSONA,
                                     "queries": queries}) + "\n")
    return path


def write_config(path, cfg: dict):
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server on 127.0.0.1 (moto's server mode), for the whole session."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_root(s3_server, monkeypatch, request):
    """A fresh bucket on the local S3 server, with endpoint and credentials in the environment as
    users set them; returns its s3:// dataset root."""
    import re

    import boto3

    for name, value in {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "test-access-key",
                        "AWS_SECRET_ACCESS_KEY": "test-secret-key", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    bucket = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/datasets/run"


def run_watched(cmd, timeout=240, env=None):
    """Run a command, noting every process it starts (ours only, never the machine's).

    Returns (exit code, stdout + stderr, the processes it had below it, as (pid, start time)).
    """
    import subprocess
    import tempfile
    import time

    from personasim.watchdog import descendants

    seen = set()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            seen |= descendants(proc.pid)
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        out.seek(0)
        return proc.returncode, out.read(), seen


def still_running(processes):
    """Those of `processes` still alive (the same process: start time checked, never a recycled pid)."""
    from personasim.watchdog import _alive

    return {p for p in processes if _alive(p)}
