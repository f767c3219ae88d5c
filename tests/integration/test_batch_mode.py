"""Batch mode against the test server's Batch API, through the real `openai` client: the same
interactions as online, failed lines retried or failing their pair as online, expired and slow
batches, a kill at any point paying for nothing twice, cached tokens at their price."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pyarrow.dataset as ds
import pytest

from personasim.batch.journal import Journal
from personasim.batch.runner import BatchRun
from personasim.config import load_config
from personasim.engine import Engine
from personasim.inputs import load_input
from personasim.interaction_generator import InteractionStorage
from personasim.llm import operations as op
from personasim.pricing import tokens_cost
from personasim.records import Failure, Interaction
from personasim.testing import FakeOpenAIServer, Fault, server_config

from conftest import write_config, write_pairs

PRICES = {"fake-model": {"input_per_1m": 1.0, "cached_input_per_1m": 0.25, "output_per_1m": 4.0}}


def _said(body: dict) -> str:
    return json.dumps(body.get("messages"), sort_keys=True)


def answer(body: dict) -> str | Fault:
    """The assistant: a reply that depends on what it was asked alone (so any order gives the same);
    the persona p3's first question is refused for good (a 400, as a bad request is)."""
    last = body["messages"][-1]["content"]
    if "question 0 from p3" in last:
        return Fault("status", 400, message="this request is not allowed")
    digest = hashlib.md5(_said(body).encode()).hexdigest()[:8]
    return f"On {last[:50]!r}: first check the basics, then measure ({digest})."


def follow_up(body: dict) -> str:
    transcript = body["messages"][-1]["content"]
    turns = transcript.count("ASSISTANT:")
    if turns >= 2 + len(transcript) % 2:
        return op.SATISFIED
    digest = hashlib.md5(transcript.encode()).hexdigest()[:6]
    return f"Thanks. And how would I check step {turns} on my own setup ({digest})?"


def scripted(server: FakeOpenAIServer) -> FakeOpenAIServer:
    server.respond_with(op.RESPOND, answer)
    server.respond_with(op.FOLLOW_UP, follow_up)
    return server


def config(server: FakeOpenAIServer, **extra) -> dict:
    return {"seed": 11, **server_config(server.base_url, max_retries=2), "pricing": PRICES,
            "distractor": {"type": "semantic", "activation_probability": 0.5},
            "batch": {"poll_s": 0.02, "max_poll_s": 0.1}, **extra}


def rows(root, table):
    return ds.dataset(f"{root}/{table}", format="parquet", partitioning="hive").to_table().to_pylist()


def conversations(root) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for m in sorted(rows(root, "messages"), key=lambda m: (m["interaction_id"], m["position"])):
        out.setdefault(m["interaction_id"], []).append((m["role"], m["content"], m["clean_text"], m["noise_layer"]))
    return out


@pytest.mark.usefixtures("prefect_harness")
def test_a_batch_run_and_an_online_run_of_the_same_pairs_give_the_same_interactions(tmp_path, monkeypatch):
    from personasim.flows.generate import generate_interactions

    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
    pairs = write_pairs(tmp_path / "pairs.jsonl", 6)
    summaries, servers = {}, {}
    for mode in ("online", "batch"):
        with scripted(FakeOpenAIServer()) as server:
            server.inject(Fault("status", 500, operation=op.RESPOND))  # a transient failure: retried in both
            cfg = write_config(tmp_path / f"{mode}.yaml", config(server))
            summaries[mode] = generate_interactions(input_path=str(pairs), dataset_root=str(tmp_path / mode),
                                                    config_path=str(cfg), mode=mode, max_failure_ratio=0.5)
            servers[mode] = server
    online, batch = tmp_path / "online", tmp_path / "batch"
    assert conversations(online) == conversations(batch) and len(conversations(batch)) == 5
    # the pair whose call was refused fails in both, with the endpoint's reason
    [failed_online], [failed_batch] = rows(online, "failures"), rows(batch, "failures")
    assert failed_online["interaction_id"] == failed_batch["interaction_id"]
    assert "not allowed" in failed_online["reason"] and "not allowed" in failed_batch["reason"]
    assert "HTTP 400" in failed_batch["reason"] and failed_batch["permanent"]
    # every call of the batch run went through the Batch API, once, and is booked at the batch price
    server = servers["batch"]
    assert server.stats.batch_lines == server.stats.requests and server.stats.batches_created >= 5
    assert set(server.stats.executed_custom_ids.values()) == {1} or _only_retried_lines_twice(server)
    usage = rows(batch, "token_usage")
    assert usage and all(r["batch"] for r in usage)
    stats = {mode: json.loads((tmp_path / mode / "stats.json").read_text()) for mode in ("online", "batch")}
    tokens = {mode: {k: stats[mode]["tokens"][k] for k in ("calls", "input_tokens", "output_tokens")}
              for mode in stats}
    assert tokens["online"] == tokens["batch"]
    assert stats["batch"]["tokens"]["batch_calls"] == stats["batch"]["tokens"]["calls"]
    assert stats["batch"]["cost"]["total_usd"] == pytest.approx(stats["online"]["cost"]["total_usd"] / 2, abs=2e-6)
    assert stats["batch"]["cost"]["online_usd"] == pytest.approx(stats["online"]["cost"]["total_usd"], abs=2e-6)
    assert summaries["batch"]["cost_usd"] == pytest.approx(summaries["online"]["cost_usd"] / 2, abs=2e-6)


def _only_retried_lines_twice(server: FakeOpenAIServer) -> bool:
    """The line that met the injected 500 ran twice (it failed, it was sent again); no other did."""
    twice = [c for c, n in server.stats.executed_custom_ids.items() if n > 1]
    return len(twice) == 1 and server.stats.executed_custom_ids[twice[0]] == 2 and twice[0].endswith(op.RESPOND)


def batch_engine(tmp_path, cfg: dict) -> tuple[Engine, Journal]:
    config = load_config(cfg)
    engine = Engine.from_config(config, store=InteractionStorage(tmp_path / "store"), concurrency=4)
    return engine, Journal(tmp_path / "journal.sqlite")


def run_batches(tmp_path, cfg: dict, pairs, **kw) -> tuple[list, int]:
    engine, journal = batch_engine(tmp_path, cfg)
    outcomes: list = []
    try:
        left = BatchRun(engine, journal, load_config(cfg), "batch", **kw).run(pairs, outcomes.append)
    finally:
        engine.close()
        journal.close()
    return outcomes, left


def test_an_expired_batch_is_sent_again_only_for_the_calls_it_did_not_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
    pairs = load_input(write_pairs(tmp_path / "pairs.jsonl", 5))
    with scripted(FakeOpenAIServer()) as server:
        server.expire_next_batch(answered=2)
        outcomes, left = run_batches(tmp_path, config(server, distractor={"enabled": False}), pairs)
    assert left == 0 and sum(isinstance(o, Interaction) for o in outcomes) == 4
    assert set(server.stats.executed_custom_ids.values()) == {1}  # the 3 unanswered went again, nothing twice
    first_round = [c for c in server.stats.executed_custom_ids if c.endswith("#1|rewrite_query")]
    assert len(first_round) == 5
    journal = sqlite3.connect(tmp_path / "journal.sqlite")
    assert journal.execute("SELECT status FROM uploads ORDER BY planned_at LIMIT 1").fetchone() == ("expired",)
    assert journal.execute("SELECT COUNT(*) FROM requests WHERE state != 'answered'").fetchone() == (0,)


def test_a_round_over_the_per_file_limits_goes_as_several_files_each_line_once_and_none_left_on_disk(
        tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
    pairs = load_input(write_pairs(tmp_path / "pairs.jsonl", 7))
    limits = {"poll_s": 0.02, "max_poll_s": 0.1, "max_requests_per_file": 3, "max_bytes_per_file": 1_000_000}
    with scripted(FakeOpenAIServer()) as server:
        outcomes, left = run_batches(tmp_path, config(server, distractor={"enabled": False}, batch=limits), pairs)
    assert left == 0 and sum(isinstance(o, Interaction) for o in outcomes) == 6  # p3's first question: refused
    assert set(server.stats.executed_custom_ids.values()) == {1}
    journal = sqlite3.connect(tmp_path / "journal.sqlite")
    first = journal.execute("SELECT lines FROM uploads WHERE round = 1 ORDER BY upload").fetchall()
    assert first == [(3,), (3,), (1,)]  # the seven style transfers of round 1: three files within the limit
    assert journal.execute("SELECT SUM(lines) FROM uploads").fetchone() == (server.stats.batch_lines,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.sqlite", "journal.sqlite-shm",
                                                          "journal.sqlite-wal", "pairs.jsonl", "store"]
    bytes_limit = {**limits, "max_requests_per_file": 50_000, "max_bytes_per_file": 4_000}
    with scripted(FakeOpenAIServer()) as server:
        run_batches(tmp_path / "by-bytes", config(server, distractor={"enabled": False}, batch=bytes_limit), pairs)
    files = sqlite3.connect(tmp_path / "by-bytes" / "journal.sqlite").execute("SELECT lines, bytes FROM uploads")
    by_bytes = files.fetchall()
    assert any(lines > 1 for lines, _ in by_bytes) and any(size > 2_000 for _, size in by_bytes)
    assert all(size <= 4_000 or lines == 1 for lines, size in by_bytes)  # a line alone may be longer


def test_a_line_that_keeps_failing_fails_its_pair_with_the_reason_once_its_retries_are_spent(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
    pairs = load_input(write_pairs(tmp_path / "pairs.jsonl", 2))
    with scripted(FakeOpenAIServer()) as server:
        server.respond_with(op.RESPOND, lambda body: Fault("status", 503) if "from p1" in _said(body)
                            else answer(body))
        outcomes, left = run_batches(tmp_path, config(server, distractor={"enabled": False},
                                                      retry={"max_retries": 1, "pair_attempts": 2}), pairs)
    [failure] = [o for o in outcomes if isinstance(o, Failure)]
    assert failure.persona_id == "p1" and "HTTP 503" in failure.reason and not failure.permanent
    assert failure.attempts == 2  # the pair was tried again from the start, as online
    p1 = [n for c, n in server.stats.executed_custom_ids.items() if c.startswith(failure.interaction_id)]
    assert sorted(p1) == [1, 1, 2, 2]  # each attempt: its rewrite once, its answer sent twice (max_retries 1)


def test_a_slow_batch_is_waited_for_and_the_progress_note_says_where_the_run_stands(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
    pairs = load_input(write_pairs(tmp_path / "pairs.jsonl", 3))
    with scripted(FakeOpenAIServer()) as server:
        server.slow_batches(1, 0.5)
        engine, journal = batch_engine(tmp_path, config(server, distractor={"enabled": False}))
        run = BatchRun(engine, journal, load_config(config(server)), "batch")
        notes: list[str] = []
        started = time.monotonic()
        outcomes = []

        def seen(outcome):
            notes.append(run.note())
            outcomes.append(outcome)

        assert run.run(pairs, seen) == 0
        engine.close()
    assert time.monotonic() - started >= 0.5 and len(outcomes) == 3
    assert notes[-1].startswith("round ") and "in progress" in notes[-1] and "done" in notes[-1]
    counts = journal.counts()
    assert counts["submitted"] == counts["done"] == journal.rounds() and counts["in_progress"] == 0
    journal.close()


def test_a_kill_between_creating_a_batch_and_recording_it_adopts_the_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
    pairs = load_input(write_pairs(tmp_path / "pairs.jsonl", 3))
    cfg = None
    with scripted(FakeOpenAIServer()) as server:
        cfg = config(server, distractor={"enabled": False})

        def killed(self, upload, batch_id, status):  # the batch exists; the process dies before it is written
            raise KeyboardInterrupt

        monkeypatch.setattr(Journal, "created", killed)
        with pytest.raises(KeyboardInterrupt):
            run_batches(tmp_path, cfg, pairs)
        monkeypatch.undo()
        monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
        assert server.stats.batches_created == 1
        outcomes, left = run_batches(tmp_path, cfg, pairs)
    assert left == 0 and len(outcomes) == 3
    assert set(server.stats.executed_custom_ids.values()) == {1}
    rounds = sqlite3.connect(tmp_path / "journal.sqlite").execute("SELECT COUNT(*) FROM uploads").fetchone()[0]
    assert server.stats.batches_created == rounds  # the first round's batch adopted, not created again


def test_cached_tokens_the_server_reports_are_booked_and_priced_at_the_cached_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
    long = "I run a small bakery and want to plan next month's orders around the holidays. " * 30
    pairs = load_input(write_pairs(tmp_path / "pairs.jsonl", 2))
    pairs = [p.__class__(**{**p.__dict__, "original_query": long + p.original_query}) for p in pairs]
    with scripted(FakeOpenAIServer(cache_min_tokens=256)) as server:
        server.respond_with(op.FOLLOW_UP, lambda body: "And then what should I check next, in order?"
                            if body["messages"][-1]["content"].count("ASSISTANT:") < 3 else op.SATISFIED)
        outcomes, _ = run_batches(tmp_path, config(server, distractor={"enabled": False},
                                                   generation={"transfer_probability": 0.0}), pairs)
    usage = [u for o in outcomes for u in o.usage]
    cached = sum(u.cached_tokens for u in usage)
    assert cached == server.stats.cached_tokens > 0
    pricing = load_config({"pricing": PRICES}).pricing
    priced = sum(tokens_cost(u.model, u.input_tokens, u.output_tokens, pricing, cached_tokens=u.cached_tokens,
                             batch=u.batch) for u in usage)
    uncached = sum((u.input_tokens * 1.0 + u.output_tokens * 4.0) / 1e6 / 2 for u in usage)
    assert priced == pytest.approx(uncached - cached * 0.75 / 1e6 / 2)
    share = cached / sum(u.input_tokens for u in usage)
    print(f"cached share of input tokens: {share:.1%}")  # the closing note's figure comes from the benchmark
    assert share > 0.2


def test_sigkill_while_polling_then_rerun_pays_for_nothing_twice(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
    pairs = write_pairs(tmp_path / "pairs.jsonl", 4)
    root = tmp_path / "ds"
    with scripted(FakeOpenAIServer(batch_delay=0.6)) as server:
        cfg = write_config(tmp_path / "c.yaml", config(server, distractor={"enabled": False}))
        cmd = [sys.executable, "-m", "personasim", "run", "--input", str(pairs), "--output", str(root), "--config",
               str(cfg), "--mode", "batch"]
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline, polled = time.monotonic() + 120, False
        try:
            while proc.poll() is None and time.monotonic() < deadline and not polled:
                time.sleep(0.05)
                polled = _uploads_in_flight(root) >= 1 and server.stats.batches_created >= 3
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
        assert polled, "the run never got to its third round"
        paid_before = sum(server.stats.executed_custom_ids.values())
        server.batch_delay = 0.0
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert set(server.stats.executed_custom_ids.values()) == {1}  # no line ran twice, across the kill
    assert sum(server.stats.executed_custom_ids.values()) > paid_before
    interactions = rows(root, "interactions")
    assert sorted(r["persona_id"] for r in interactions) == ["p0", "p1", "p2"]
    assert [r["persona_id"] for r in rows(root, "failures")] == ["p3"]  # its question is refused (400)
    usage = rows(root, "token_usage")
    assert len(usage) == server.stats.ok  # every call paid for (the refused one is not) is booked, once


def _uploads_in_flight(root) -> int:
    path = root / "_batch" / "journal.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=0.1) as db:
            return db.execute("SELECT COUNT(*) FROM uploads WHERE batch_id IS NOT NULL AND ended_at IS NULL"
                              ).fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_stopped_run_leaves_its_batches_recorded_and_the_next_run_picks_them_up(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
    pairs = load_input(write_pairs(tmp_path / "pairs.jsonl", 3))
    with scripted(FakeOpenAIServer()) as server:
        cfg = config(server, distractor={"enabled": False})
        server.slow_batches(1, 30.0)  # the first round's batch would take half a minute
        started = time.monotonic()
        outcomes, left = run_batches(tmp_path, cfg, pairs, stopped=lambda: server.stats.batches_created >= 1
                                     and time.monotonic() - started > 0.3)
        assert (outcomes, left) == ([], 3) and time.monotonic() - started < 5  # a stop ends the wait at once
        assert server.stats.batch_lines == 0
        server.hurry_batches()
        outcomes, left = run_batches(tmp_path, cfg, pairs)
    assert left == 0 and len(outcomes) == 3
    assert set(server.stats.executed_custom_ids.values()) == {1}
    assert server.stats.batches_created == sqlite3.connect(tmp_path / "journal.sqlite").execute(
        "SELECT COUNT(*) FROM uploads").fetchone()[0]  # the first batch was polled again, not created again


def test_an_endpoint_that_refuses_json_schemas_gets_json_object_lines_as_online(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-batch-0123")
    pairs = load_input(write_pairs(tmp_path / "pairs.jsonl", 3))
    with scripted(FakeOpenAIServer(json_schema=False)) as server:
        outcomes, left = run_batches(tmp_path, config(server, distractor={"type": "semantic",
                                                                         "activation_probability": 1.0}), pairs)
    assert left == 0 and all(isinstance(o, Interaction) for o in outcomes)
    json_lines = [r for r in server.requests if r.operation == "extract_intent"]
    forms = [(r.body.get("response_format") or {}).get("type") for r in json_lines]
    # the lines of the round that met the refusal asked for a schema; they and all later ones, for any object
    last_schema = max(i for i, form in enumerate(forms) if form == "json_schema")
    assert set(forms[last_schema + 1:]) == {"json_object"} and forms.count("json_schema") <= len(pairs)
    noised = [m for o in outcomes for m in o.messages if m.noise is not None and m.noise.layer]
    assert noised  # the distractor's JSON answers were used
