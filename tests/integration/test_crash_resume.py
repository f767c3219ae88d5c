"""Runs killed with SIGKILL at five points, each rerun resuming, end with every pair exactly once."""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from personasim.testing import FakeOpenAIServer, server_config

from conftest import write_config, write_pairs

pytestmark = pytest.mark.usefixtures("prefect_harness")

PAIRS = 60


@dataclass(frozen=True)
class Progress:
    stored: int
    commits: int
    uncommitted_parts: int


def progress(root) -> Progress:
    commits = {p.stem for p in (root / "_commits").glob("*.json")} if (root / "_commits").exists() else set()
    parts = [re.match(r"part-(.+)\.parquet$", p.name) for p in root.glob("*/**/part-*.parquet")]
    stored = len(list((root / "_store").glob("ix-*.json"))) if (root / "_store").exists() else 0
    return Progress(stored, len(commits), sum(1 for m in parts if m and m.group(1) not in commits))


# (where the kill lands, when to send it given the progress at the start of that run)
KILL_POINTS = [
    ("during generation", lambda start, now: now.stored >= 1),
    ("during storage", lambda start, now: now.stored >= start.stored + 4),
    ("during the Parquet write", lambda start, now: now.uncommitted_parts > 0 or now.commits > start.commits),
    ("right after a commit", lambda start, now: now.commits > start.commits),
    ("later in generation", lambda start, now: now.stored >= start.stored + 8),
]


def test_sigkill_at_five_points_then_rerun_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-crash")
    root = tmp_path / "ds"
    pairs = write_pairs(tmp_path / "pairs.jsonl", PAIRS)
    killed = []
    with FakeOpenAIServer(latency=0.03) as server:
        cfg = write_config(tmp_path / "c.yaml", {"seed": 3, **server_config(server.base_url),
                                                 "distractor": {"activation_probability": 0.3},
                                                 "pricing": {"fake-model": {"input_per_1m": 1.0,
                                                                            "output_per_1m": 4.0}}})
        for name, condition in KILL_POINTS:
            start = progress(root)
            proc = subprocess.Popen(
                [sys.executable, "-m", "personasim", "run", "--input", str(pairs), "--output", str(root),
                 "--config", str(cfg), "--max-concurrency", "3", "--pairs-per-task", "2", "--wave-size", "6"],
                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            try:
                while proc.poll() is None and time.monotonic() < deadline:
                    if condition(start, progress(root)):
                        os.killpg(proc.pid, signal.SIGKILL)
                        killed.append((name, progress(root)))
                        break
                    time.sleep(0.005)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if proc.returncode == 0:  # the run got to the end before this point: nothing left to kill
                break

        from personasim.flows.generate import generate_interactions

        summary = generate_interactions(input_path=str(pairs), dataset_root=str(root), config_path=str(cfg),
                                        max_concurrency=4)
        answered = server.stats.ok
        clean = generate_interactions(input_path=str(pairs), dataset_root=str(tmp_path / "clean"),
                                      config_path=str(cfg), max_concurrency=4)["statistics"]
    assert len(killed) >= 4, killed
    assert summary["failed"] == 0 and summary["done"] + summary["skipped"] + summary["recovered"] >= PAIRS

    tables = {name: ds.dataset(root / name, format="parquet", partitioning="hive").to_table()
              for name in ("interactions", "messages", "training", "token_usage")}
    ids = collections.Counter(tables["interactions"].column("interaction_id").to_pylist())
    assert len(ids) == PAIRS and set(ids.values()) == {1}
    per_ix = collections.Counter(tables["messages"].column("interaction_id").to_pylist())
    assert per_ix == {i: 2 * n for i, n in zip(tables["interactions"].column("interaction_id").to_pylist(),
                                               tables["interactions"].column("num_turns").to_pylist(), strict=True)}
    assert sorted(tables["training"].column("interaction_id").to_pylist()) == sorted(ids)
    for path in root.glob("*/**/*.parquet"):  # every file reads back
        pq.read_table(path)
    assert progress(root).uncommitted_parts == 0

    # the books: the resumed dataset reports exactly what a clean run of the same pairs does
    stats = json.loads((root / "stats.json").read_text())
    for key in ("calls", "input_tokens", "output_tokens"):
        assert stats["tokens"][key] == clean["tokens"][key] > 0, key
    assert stats["cost"]["total_usd"] == clean["cost"]["total_usd"] > 0
    assert stats["tokens"]["calls"] == sum(tables["interactions"].column("llm_calls").to_pylist())
    # and what the killed runs paid for is not lost: every answered call is in `spent`, save the
    # few answered in the instant before a kill, which the killed process never received
    assert stats["tokens"]["calls"] < stats["spent"]["calls"] <= answered
    assert answered - stats["spent"]["calls"] <= 3 * len(killed)
    assert not list(root.rglob(".*.tmp"))  # what the kills left half-written was cleared


def test_after_sigkill_of_the_command_no_process_of_the_run_is_left(tmp_path, monkeypatch):
    """Only the CLI's own process is killed: its Prefect API server, Dask workers and watchdog
    must not outlive it. The test looks only at processes it started."""
    from personasim.watchdog import descendants

    from conftest import still_running

    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-crash")
    pairs = write_pairs(tmp_path / "pairs.jsonl", 40)
    with FakeOpenAIServer(latency=0.3) as server:
        cfg = write_config(tmp_path / "c.yaml", {"seed": 3, **server_config(server.base_url)})
        proc = subprocess.Popen([sys.executable, "-m", "personasim", "run", "--input", str(pairs), "--output",
                                 str(tmp_path / "ds"), "--config", str(cfg), "--max-concurrency", "4",
                                 "--task-runner", "dask", "--workers", "2"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen: set = set()
        try:
            deadline = time.monotonic() + 120
            while not list((tmp_path / "ds" / "_store").glob("ix-*.json")) and time.monotonic() < deadline:
                seen |= descendants(proc.pid)
                time.sleep(0.1)
            seen |= descendants(proc.pid)
            assert proc.poll() is None and len(seen) >= 4  # watchdog, API server, two workers (at least)
            proc.kill()
            proc.wait()
            deadline = time.monotonic() + 10
            while still_running(seen) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not still_running(seen)
        finally:
            for pid, _ in still_running(seen):
                os.kill(pid, signal.SIGKILL)
