"""A run killed with SIGKILL at any moment, then rerun, ends with every pair exactly once."""

import collections
import os
import signal
import subprocess
import sys
import time

import pyarrow.dataset as ds
import pytest

from personasim.testing import FakeOpenAIServer, endpoint_config

from conftest import write_config, write_pairs

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _count(path, pattern):
    return len(list(path.glob(pattern))) if path.exists() else 0


@pytest.mark.parametrize("kill_when", ["stored", "committed"])
def test_sigkill_then_rerun_loses_and_duplicates_nothing(tmp_path, monkeypatch, kill_when):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-crash")
    root = tmp_path / "ds"
    pairs = write_pairs(tmp_path / "pairs.jsonl", 30)
    with FakeOpenAIServer(latency=0.03) as server:
        cfg = write_config(tmp_path / "c.yaml", {"seed": 3, "llm": endpoint_config(server.base_url),
                                                 "distractor": {"activation_probability": 0.3}})
        proc = subprocess.Popen(
            [sys.executable, "-m", "personasim", "run", "--input", str(pairs), "--output", str(root),
             "--config", str(cfg), "--max-concurrency", "3", "--wave-size", "6"],
            env={**os.environ, "PREFECT_API_URL": ""}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if kill_when == "stored" and _count(root / "_store", "ix-*.json") >= 3:
                    break
                if kill_when == "committed" and _count(root / "_commits", "*.json") >= 1:
                    break
                time.sleep(0.02)
            assert proc.poll() is None, "the run ended before it could be killed"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

        from flows.generate import generate_interactions

        summary = generate_interactions(input_path=str(pairs), dataset_root=str(root), config_path=str(cfg),
                                        max_concurrency=4)
    assert summary["failed"] == 0
    assert summary["done"] + summary["skipped"] == 30
    interactions = ds.dataset(root / "interactions", format="parquet", partitioning="hive").to_table()
    ids = collections.Counter(interactions.column("interaction_id").to_pylist())
    assert len(ids) == 30 and set(ids.values()) == {1}
    messages = ds.dataset(root / "messages", format="parquet", partitioning="hive").to_table()
    per_ix = collections.Counter(messages.column("interaction_id").to_pylist())
    assert per_ix == {i: 2 * n for i, n in zip(interactions.column("interaction_id").to_pylist(),
                                               interactions.column("num_turns").to_pylist())}
    training = ds.dataset(root / "training", format="parquet", partitioning="hive").to_table()
    assert sorted(training.column("interaction_id").to_pylist()) == sorted(ids)
