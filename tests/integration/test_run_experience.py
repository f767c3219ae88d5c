"""The run as people drive it, through the real command in a subprocess: progress, the budget,
Ctrl-C, the estimate against what the run then costs."""

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from personasim.testing import FakeOpenAIServer, server_config

from conftest import write_config, write_pairs

ROOT = Path(__file__).resolve().parents[2]
PRICES = {"fake-model": {"input_per_1m": 100.0, "output_per_1m": 400.0}}


def command(*args):
    return [sys.executable, "-m", "personasim", *map(str, args)]


def interactions(root):
    return ds.dataset(root / "interactions", format="parquet", partitioning="hive").to_table()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-run")
    with FakeOpenAIServer(latency=0.05) as running:
        yield running


def test_the_budget_stops_new_pairs_commits_the_rest_and_a_rerun_resumes(tmp_path, server):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 30)
    cfg = write_config(tmp_path / "c.yaml", {"seed": 1, **server_config(server.base_url), "pricing": PRICES})
    run = subprocess.run(command("run", "--input", pairs, "--output", tmp_path / "ds", "--config", cfg,
                                 "--max-concurrency", "2", "--max-cost", "0.05",
                                 "--summary-json", tmp_path / "s.json"),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stdout[-2000:] + run.stderr[-2000:]
    stopped = [line for line in run.stdout.splitlines() if line.startswith("stopped by the budget")]
    assert len(stopped) == 1 and "Traceback" not in run.stdout + run.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["stopped"] == "budget" and summary["not_started"] > 0
    assert 0.05 <= summary["cost_usd"] < 0.05 + 2 * summary["cost_usd"] / max(1, summary["done"])  # in flight only
    assert interactions(tmp_path / "ds").num_rows == summary["done"]
    assert "progress:" in run.stderr  # not a terminal: plain progress lines
    # the run's time counts from its first pair (started before Prefect's API answered), not from the flow
    assert summary["elapsed_s"] >= server.stats.last_at - server.stats.first_at

    again = subprocess.run(command("run", "--input", pairs, "--output", tmp_path / "ds", "--config", cfg,
                                   "--max-concurrency", "4"), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:]
    ids = collections.Counter(interactions(tmp_path / "ds").column("interaction_id").to_pylist())
    assert len(ids) == 30 and set(ids.values()) == {1}


def watch_stderr(proc):
    """The process's stderr lines, collected as they come (a thread reads the pipe)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    return lines, reader


def test_ctrl_c_with_calls_in_flight_commits_and_exits_130_quickly_then_the_rerun_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-run")
    pairs = write_pairs(tmp_path / "pairs.jsonl", 96)
    with FakeOpenAIServer(latency=1.0) as server:
        cfg = write_config(tmp_path / "c.yaml", {"seed": 1, **server_config(server.base_url, timeout=30)})
        proc = subprocess.Popen(command("run", "--input", pairs, "--output", tmp_path / "ds", "--config", cfg,
                                        "--max-concurrency", "32"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        errors, reader = watch_stderr(proc)
        store = tmp_path / "ds" / "_store"
        deadline = time.monotonic() + 120
        while (len(list(store.glob("ix-*.json"))) < 8 or not any("progress:" in line for line in errors)) \
                and time.monotonic() < deadline:  # the flow has the run: its progress is out
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        out = proc.communicate(timeout=60)[0]
        reader.join(10)
        took, err = time.monotonic() - interrupted, "".join(errors)
        assert proc.returncode == 130, out[-2000:] + err[-2000:]
        assert took < 15, took
        assert "Traceback" not in out + err and out.count("interrupted:") == 1
        done = interactions(tmp_path / "ds").num_rows
        assert 0 < done < 96
        server.latency = 0.05  # the rerun need not be slow
        again = subprocess.run(command("run", "--input", pairs, "--output", tmp_path / "ds", "--config", cfg,
                                       "--max-concurrency", "32"), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:]
    ids = collections.Counter(interactions(tmp_path / "ds").column("interaction_id").to_pylist())
    assert len(ids) == 96 and set(ids.values()) == {1}
    print(f"Ctrl-C to exit: {took:.1f} s with 32 calls in flight at 1 s latency; {done} pairs committed")


def test_pairs_start_before_prefect_answers_and_ctrl_c_then_keeps_them_for_the_rerun(tmp_path, monkeypatch):
    """The command puts its pairs in flight while Prefect's API boots; here the configured API never
    answers, so Ctrl-C comes before the flow: pairs done stay stored, and the rerun writes them
    without a call, once each, with what the first command paid on the books."""
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-run")
    pairs = write_pairs(tmp_path / "pairs.jsonl", 40)
    with socket.socket() as silent, FakeOpenAIServer(latency=0.2) as server:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections are taken by the kernel, never answered
        cfg = write_config(tmp_path / "c.yaml", {"seed": 1, **server_config(server.base_url), "pricing": PRICES})
        run = command("run", "--input", pairs, "--output", tmp_path / "ds", "--config", cfg, "--max-concurrency", "4",
                      "--summary-json", tmp_path / "s.json")
        env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/api"}
        proc = subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        store = tmp_path / "ds" / "_store"
        deadline = time.monotonic() + 60
        while len(list(store.glob("ix-*.json"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - interrupted
        assert proc.returncode == 130, out[-2000:] + err[-2000:]
        assert took < 10 and "Traceback" not in out + err, (took, err[-2000:])
        said = [line for line in out.splitlines() if line.startswith("interrupted before the flow started:")]
        assert len(said) == 1, out
        stored = int(said[0].split(":")[1].split()[0])
        assert stored == len(list(store.glob("ix-*.json"))) >= 3 and not (tmp_path / "ds" / "interactions").exists()
        first_calls = server.stats.ok

        again = subprocess.run(run, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        summary = json.loads((tmp_path / "s.json").read_text())
        assert summary["recovered"] == stored and summary["done"] == 40
        assert summary["llm_calls"] == server.stats.ok - first_calls  # the stored pairs: no call again
    ids = collections.Counter(interactions(tmp_path / "ds").column("interaction_id").to_pylist())
    assert len(ids) == 40 and set(ids.values()) == {1}
    spent = json.loads((tmp_path / "ds" / "stats.json").read_text())["spent"]
    assert spent["calls"] > summary["llm_calls"]  # what the interrupted command paid is counted too


def test_the_estimate_calibrated_on_a_first_part_is_within_20_percent_of_what_the_rest_costs(tmp_path, server):
    sample = ROOT / "datasets" / "sample_personas.jsonl"
    cfg = write_config(tmp_path / "c.yaml", {"seed": 1, **server_config(server.base_url), "pricing": PRICES,
                                             "distractor": {"activation_probability": 0.3}})
    first = subprocess.run(command("run", "--input", sample, "--output", tmp_path / "ds", "--config", cfg,
                                   "--limit", "15"), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-2000:]
    estimate = subprocess.run(command("estimate", "--input", sample, "--output", tmp_path / "ds", "--config", cfg,
                                      "--json"), capture_output=True, text=True, timeout=60)
    projected = json.loads(estimate.stdout)
    assert projected["pairs"] == 40 and projected["calibrated_from"] == 15
    rest = subprocess.run(command("run", "--input", sample, "--output", tmp_path / "ds", "--config", cfg,
                                  "--summary-json", tmp_path / "s.json"), capture_output=True, text=True, timeout=300)
    assert rest.returncode == 0
    actual = json.loads((tmp_path / "s.json").read_text())["cost_usd"]
    assert abs(projected["cost"]["total_usd"] - actual) <= 0.2 * actual, (projected["cost"], actual)
    # and the uncalibrated estimate (no dataset) is a sum of the same parts: calls of every role
    modelled = json.loads(subprocess.run(command("estimate", "--input", sample, "--config", cfg, "--json"),
                                         capture_output=True, text=True, timeout=60).stdout)
    assert modelled["calibrated_from"] == 0 and modelled["calls"] > 55 * 2 and modelled["cost"]["total_usd"] > 0
    assert os.path.exists(tmp_path / "ds" / "stats.json")
