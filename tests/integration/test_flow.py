"""The Prefect flow end to end against the local OpenAI-compatible server."""

import json

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from personasim.dataset import Dataset
from personasim.dataset.schema import FAILURES, TABLES
from personasim.llm import operations as op
from personasim.testing import Fault

from conftest import write_config, write_pairs

pytestmark = pytest.mark.usefixtures("prefect_harness")


def run_flow(input_path, root, config_path, **kwargs):
    from personasim.flows.generate import generate_interactions

    return generate_interactions(input_path=str(input_path), dataset_root=str(root),
                                 config_path=str(config_path), **kwargs)


def table_rows(root, table):
    return ds.dataset(f"{root}/{table}", format="parquet", partitioning="hive").to_table().to_pylist()


def test_n_pairs_in_n_interactions_out_with_the_declared_schema(tmp_path, remote_config, llm_server):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 6, queries_per_persona=2)
    cfg = write_config(tmp_path / "c.yaml", remote_config(distractor={"activation_probability": 0.5}))
    summary = run_flow(pairs, tmp_path / "ds", cfg, max_concurrency=4, wave_size=5)
    assert (summary["pairs"], summary["done"], summary["failed"]) == (12, 12, 0)
    interactions = table_rows(tmp_path / "ds", "interactions")
    assert len(interactions) == 12 and len({r["interaction_id"] for r in interactions}) == 12
    messages = table_rows(tmp_path / "ds", "messages")
    assert len(messages) == sum(len(r["messages"]) for r in interactions)
    assert {r["split"] for r in table_rows(tmp_path / "ds", "training")} <= {"train", "validation", "test"}
    usage = table_rows(tmp_path / "ds", "token_usage")
    assert len(usage) == llm_server.stats.ok == summary["llm_calls"]
    assert summary["input_tokens"] == llm_server.stats.prompt_tokens
    assert sum(r["input_tokens"] for r in usage) == llm_server.stats.prompt_tokens
    assert table_rows(tmp_path / "ds", "failures") == []  # the current view exists, empty
    for table, schema in {**TABLES, "failures": FAILURES}.items():
        if table in ("failure_log", "personas", "assignments", "scores"):  # no failure, judge or persona: no file
            assert not (tmp_path / "ds" / table).exists()
            continue
        for fragment in ds.dataset(f"{tmp_path}/ds/{table}", format="parquet").files:
            assert pq.read_schema(fragment).remove_metadata() == schema, (table, fragment)
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert stats["interactions"] == 12 and stats["tokens"]["calls"] == len(usage)
    assert set(stats["persona_distribution"]) == {f"p{i}" for i in range(6)}
    # the chat exports, one file per split, hold every training row once, in chat format
    training = table_rows(tmp_path / "ds", "training")
    exported = {}
    for split in ("train", "validation", "test"):
        lines = (tmp_path / "ds" / "exports" / f"{split}.chat.jsonl").read_text().splitlines()
        exported[split] = [json.loads(line) for line in lines]
        assert len(lines) == sum(1 for r in training if r["split"] == split)
        assert all(record["messages"][-1]["role"] == "assistant" for record in exported[split])
    export_stats = json.loads((tmp_path / "ds" / "exports" / "statistics.json").read_text())
    assert export_stats["samples"] == 12 and export_stats["personas"] == 6
    assert export_stats["by_split"] == {split: len(records) for split, records in exported.items() if records}
    assert export_stats["avg_turns"] == round(sum(r["num_turns"] for r in training) / 12, 3)


def test_faults_are_absorbed_and_every_pair_is_done(tmp_path, remote_config, llm_server):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 8)
    cfg = write_config(tmp_path / "c.yaml", remote_config(timeout=1.0, max_retry_wait=0.2))
    llm_server.inject(Fault("status", 429, retry_after=0.1), Fault("status", 500), Fault("slow", delay=2.0),
                      Fault("drop"), Fault("malformed"), Fault("status", 502))
    summary = run_flow(pairs, tmp_path / "ds", cfg, max_concurrency=4)
    assert (summary["done"], summary["failed"]) == (8, 0)
    assert sum(1 for r in llm_server.requests if r.answered != "ok") == 6


def test_an_always_failing_pair_lands_in_failures_and_the_run_goes_on(tmp_path, remote_config, llm_server):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 5)
    cfg = write_config(tmp_path / "c.yaml", remote_config(max_retries=1, max_retry_wait=0.05,
                                                          generation={"transfer_probability": 1.0}))
    llm_server.respond_with(op.RESPOND, lambda body: Fault("status", 400) if "from p3" in json.dumps(body)
                            else "fine answer")
    summary = run_flow(pairs, tmp_path / "ds", cfg, max_concurrency=4)
    assert (summary["done"], summary["failed"]) == (4, 1)
    for i in (0, 1, 2, 4):  # the pairs that succeeded were asked once
        rewrites = [r for r in llm_server.requests_for(op.REWRITE_QUERY) if f"from p{i}" in json.dumps(r.body)]
        assert len(rewrites) == 1, i
    p3_turns = [r for r in llm_server.requests_for(op.RESPOND) if "from p3" in json.dumps(r.body)]
    assert len(p3_turns) == 1  # a 400 is permanent: retried neither by the client, the engine nor Prefect
    [failure] = table_rows(tmp_path / "ds", "failures")
    assert failure["persona_id"] == "p3" and failure["stage"] == "turn_loop"
    assert "HTTP 400" in failure["reason"] and failure["permanent"] and failure["attempts"] == 1
    assert json.loads((tmp_path / "ds" / "stats.json").read_text())["failed_pairs"] == 1

    # the rerun redoes only the failed pair; once it succeeds, nothing is left failing
    llm_server.respond_with(op.RESPOND, lambda body: "fine answer")
    before = len(llm_server.requests)
    again = run_flow(pairs, tmp_path / "ds", cfg, max_concurrency=4)
    assert (again["done"], again["skipped"], again["failed"]) == (1, 4, 0)
    assert all("from p3" in json.dumps(r.body) for r in llm_server.requests[before:])
    assert len(table_rows(tmp_path / "ds", "interactions")) == 5
    assert json.loads((tmp_path / "ds" / "stats.json").read_text())["failed_pairs"] == 0
    assert table_rows(tmp_path / "ds", "failures") == []  # stored since: no longer failed
    [logged] = table_rows(tmp_path / "ds", "failure_log")  # the history keeps it
    assert logged["persona_id"] == "p3"


def test_a_transient_failure_is_retried_per_call_then_per_pair_and_counted(tmp_path, remote_config, llm_server):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 3)
    cfg = write_config(tmp_path / "c.yaml", remote_config(max_retries=1, max_retry_wait=0.01, pair_attempts=2,
                                                          generation={"transfer_probability": 1.0}))
    llm_server.respond_with(op.RESPOND, lambda body: Fault("status", 503) if "from p1" in json.dumps(body)
                            else "fine answer")
    summary = run_flow(pairs, tmp_path / "ds", cfg, max_concurrency=4)
    assert (summary["done"], summary["failed"]) == (2, 1)
    p1_turns = [r for r in llm_server.requests_for(op.RESPOND) if "from p1" in json.dumps(r.body)]
    assert len(p1_turns) == 2 * 2  # (1 call + 1 retry) x 2 pair attempts, nothing from the orchestrator
    [failure] = table_rows(tmp_path / "ds", "failures")
    assert failure["attempts"] == 2 and not failure["permanent"] and "HTTP 503" in failure["reason"]
    # the calls the failed pair paid for (its rewrites) are in the books
    usage = table_rows(tmp_path / "ds", "token_usage")
    assert len(usage) == llm_server.stats.ok == summary["llm_calls"]
    assert sum(1 for u in usage if u["interaction_id"] == failure["interaction_id"]) == 2


def test_rerun_skips_everything_and_calls_no_llm(tmp_path, remote_config, llm_server):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 4)
    cfg = write_config(tmp_path / "c.yaml", remote_config())
    first = run_flow(pairs, tmp_path / "ds", cfg)
    calls = len(llm_server.requests)
    second = run_flow(pairs, tmp_path / "ds", cfg)
    assert first["done"] == 4 and (second["done"], second["skipped"]) == (0, 4)
    assert len(llm_server.requests) == calls
    assert len(table_rows(tmp_path / "ds", "interactions")) == 4


def test_stored_but_unwritten_interactions_are_recovered_not_regenerated(tmp_path, remote_config, llm_server):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 3)
    cfg = write_config(tmp_path / "c.yaml", remote_config())
    run_flow(pairs, tmp_path / "ds", cfg)
    # simulate a crash after storage but before the wave commit: drop the committed files
    dataset = Dataset(tmp_path / "ds")
    for marker in (tmp_path / "ds" / "_commits").iterdir():
        marker.unlink()
    assert dataset.prepare() and dataset.interaction_ids() == set()
    calls = len(llm_server.requests)
    summary = run_flow(pairs, tmp_path / "ds", cfg)
    assert (summary["recovered"], summary["done"]) == (3, 3) and len(llm_server.requests) == calls
    assert len(table_rows(tmp_path / "ds", "interactions")) == 3


def test_refresh_picks_up_only_new_pair_files_in_a_directory(tmp_path, remote_config, llm_server):
    from personasim.flows.generate import refresh_interactions

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_pairs(incoming / "a.jsonl", 3, prefix="a")
    cfg = write_config(tmp_path / "c.yaml", remote_config())
    first = refresh_interactions(input_path=str(incoming), dataset_root=str(tmp_path / "ds"), config_path=str(cfg))
    write_pairs(incoming / "b.jsonl", 2, prefix="b")
    (incoming / "c.jsonl").write_text((incoming / "a.jsonl").read_text())  # a copy of a file already done
    write_pairs(incoming / "c.jsonl", 4, prefix="a")  # ... with one new row added
    second = refresh_interactions(input_path=str(incoming), dataset_root=str(tmp_path / "ds"), config_path=str(cfg),
                                  limit=None, seed=7, backend="config")  # the run options of on-demand
    assert (first["done"], second["done"], second["skipped"]) == (3, 3, 3)
    assert first["run_id"].startswith("refresh-")
    assert len(table_rows(tmp_path / "ds", "interactions")) == 6
