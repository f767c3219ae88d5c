"""A local Prefect server that stays between runs: `personasim server start|status|stop`, a run that
uses it (its flow run, log lines and artifacts kept in the server), and a server that dies mid-run
(the command stops at once, nothing lost; the same command resumes without paying twice)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import httpx
import pyarrow.dataset as ds
import pytest

from personasim.testing import FakeOpenAIServer, server_config

from conftest import write_config, write_pairs

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def personasim(env, *args, timeout=180):
    return subprocess.run([sys.executable, "-m", "personasim", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_a_local_server_keeps_the_runs_and_a_server_that_dies_mid_run_loses_nothing(tmp_path):
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"), "PERSONASIM_TEST_KEY": "sk-test-local-server"}
    env.pop("PREFECT_API_URL", None)
    pairs = write_pairs(tmp_path / "pairs.jsonl", 30)
    url = f"http://127.0.0.1:{port}"
    try:
        started = personasim(env, "server", "start", "--port", str(port))
        assert started.returncode == 0 and url in started.stdout, started.stderr
        assert personasim(env, "server", "status").stdout.strip() == f"running at {url}"
        with FakeOpenAIServer(latency=0.05) as llm:
            cfg = write_config(tmp_path / "c.yaml", {"seed": 2, **server_config(llm.base_url),
                                                     "distractor": {"enabled": False}})
            first = personasim(env, "run", "--input", str(pairs), "--output", str(tmp_path / "small"),
                               "--config", str(cfg), "--limit", "3")
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"on the local Prefect server {url}" in first.stdout
        link = next(line for line in first.stdout.splitlines() if "Prefect's UI" in line).split()[-1]
        flow_run = link.rsplit("/", 1)[1]
        api = httpx.Client(base_url=f"{url}/api", timeout=30)
        assert api.get(f"/flow_runs/{flow_run}").json()["state_type"] == "COMPLETED"
        logs = [r["message"] for r in api.post("/logs/filter", json={
            "logs": {"flow_run_id": {"any_": [flow_run]}}, "limit": 200}).json()]
        assert any("3 to generate" in m for m in logs) and any("3 done, 0 failed" in m for m in logs)
        assert "INFO" not in first.stderr  # the terminal as quiet as ever: the log lines went to the server
        artifacts = {a["key"] for a in api.post("/artifacts/filter", json={"limit": 50}).json()}
        assert any(key.endswith("-summary") for key in artifacts) and any(key.endswith("-report") for key in artifacts)

        with FakeOpenAIServer(latency=0.25) as llm:  # now the server dies while a run is on it
            cfg = write_config(tmp_path / "c.yaml", {"seed": 2, **server_config(llm.base_url),
                                                     "distractor": {"enabled": False}})
            root = tmp_path / "ds"
            command = [sys.executable, "-m", "personasim", "run", "--input", str(pairs), "--output", str(root),
                       "--config", str(cfg), "--max-concurrency", "3"]
            proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            deadline = time.monotonic() + 120
            while len(list((root / "_store").glob("ix-*.json"))) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            state = json.loads((tmp_path / "home" / "personasim-server.json").read_text())
            os.killpg(state["pid"], signal.SIGKILL)
            killed_at = time.monotonic()
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 130 and "stopped answering mid-run" in out
            assert time.monotonic() - killed_at < 20
            stored = len(list((root / "_store").glob("ix-*.json")))
            again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)  # no server now
            assert again.returncode == 0, again.stdout + again.stderr
        done, failed, skipped, recovered = map(int, re.search(
            r"(\d+) done, (\d+) failed, (\d+) skipped, (\d+) recovered", again.stdout).groups())
        assert stored >= 3 and skipped + recovered == stored and done + skipped == 30 and failed == 0  # none paid twice
        ids = Counter(ds.dataset(root / "interactions", format="parquet", partitioning="hive").to_table()
                      .column("interaction_id").to_pylist())
        assert len(ids) == 30 and set(ids.values()) == {1}  # every pair once
    finally:
        personasim(env, "server", "stop", timeout=60)
    assert personasim(env, "server", "status").returncode == 1
