"""Scale out: pair tasks on Dask and Ray workers, datasets on S3 (moto's server on 127.0.0.1)."""

import hashlib
import json

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from personasim.config import load_config, with_request_limit, with_worker_share
from personasim.dataset import Dataset
from personasim.flows.runners import build_task_runner, profiling_workers, worker_config
from personasim.llm import operations as op

from conftest import run_watched, still_running, write_config, write_pairs

pytestmark = pytest.mark.usefixtures("prefect_harness")


def run_flow(input_path, root, config_path, **kwargs):
    from personasim.flows.generate import generate_interactions

    return generate_interactions(input_path=str(input_path), dataset_root=str(root),
                                 config_path=str(config_path), **kwargs)


def deterministic_replies(server):
    """Replies that depend only on the request, so two runs of the same seed can be compared."""

    def digest(body):
        return hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()[:12]

    server.respond_with(op.RESPOND, lambda body: f"[{body['model']}] answer {digest(body)}")
    server.respond_with(op.FOLLOW_UP, lambda body: f"and what about {digest(body)}?")


def read_table(root, table):
    """Rows of a table wherever the root is (a directory or an s3:// URL), through pyarrow."""
    fs, base = pafs.FileSystem.from_uri(root) if "://" in root else (pafs.LocalFileSystem(), root)
    return ds.dataset(f"{base}/{table}", filesystem=fs, format="parquet", partitioning="hive").to_table()


def comparable(root):
    """What a run produced, without what differs between runs (run ids, times, latencies)."""
    interactions = read_table(root, "interactions").to_pylist()
    usage = read_table(root, "token_usage").to_pylist()
    training = read_table(root, "training").to_pylist()
    return {
        "interactions": sorted(
            (r["interaction_id"], r["initial_query"], r["num_turns"], r["assistant_model"], r["llm_calls"],
             r["input_tokens"], tuple(r["noise_strategies"]),
             tuple((m["role"], m["content"], m["clean_text"]) for m in r["messages"]))
            for r in interactions),
        "training": sorted((r["interaction_id"], r["split"], json.dumps(r["full_conversation"])) for r in training),
        "usage": sorted((r["interaction_id"], r["module"], r["operation"], r["model"], r["input_tokens"],
                         r["output_tokens"]) for r in usage),
    }


@pytest.fixture
def dask_scheduler():
    """An existing Dask cluster (two worker processes), as users point the flow at (started as the
    docs/scale-out.md says: one thread, no profiler)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      config=worker_config()) as cluster:
        yield cluster.scheduler_address


@pytest.mark.slow
def test_dask_workers_run_without_the_profiler_that_deadlocks_python_3_11():
    """The local cluster a run starts has no worker profiling (sys._current_frames() every 10 ms can
    deadlock a worker on CPython 3.11); workers of a cluster the run is pointed at that do are named."""
    import sys

    from distributed import LocalCluster

    def profiling(dask_worker):
        return "profile" in dask_worker.periodic_callbacks

    with build_task_runner("dask", address=None, workers=1, threads=4) as runner:
        assert list(runner.client.run(profiling).values()) == [False]
        assert profiling_workers(runner) == []
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            build_task_runner("dask", address=cluster.scheduler_address, workers=None, threads=4) as runner:
        flags = runner.client.run(profiling)
        assert list(flags.values()) == [True]
        assert profiling_workers(runner) == (list(flags) if sys.version_info[:2] == (3, 11) else [])


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["dask-local-cluster", "dask-scheduler-address", "ray"])
def test_worker_processes_give_the_same_datasets_as_threads(runner, tmp_path, remote_config, llm_server, request):
    deterministic_replies(llm_server)
    pairs = write_pairs(tmp_path / "pairs.jsonl", 10, queries_per_persona=2)
    cfg = write_config(tmp_path / "c.yaml", remote_config(distractor={"activation_probability": 0.6}))
    threads = run_flow(pairs, tmp_path / "threads", cfg, max_concurrency=8, pairs_per_task=3)
    calls = llm_server.stats.ok
    if runner == "dask-local-cluster":
        options = {"task_runner": "dask", "workers": 2}
    elif runner == "dask-scheduler-address":
        options = {"task_runner": "dask", "runner_address": request.getfixturevalue("dask_scheduler")}
    else:
        options = {"task_runner": "ray", "workers": 2}
    workers = run_flow(pairs, tmp_path / "workers", cfg, max_concurrency=8, pairs_per_task=3, **options)
    assert (threads["done"], workers["done"], workers["failed"]) == (20, 20, 0)
    assert (threads["workers"], workers["workers"]) == (1, 2)
    assert comparable(str(tmp_path / "workers")) == comparable(str(tmp_path / "threads"))
    # every call made on a worker is counted once, and only once
    assert workers["llm_calls"] == threads["llm_calls"] == calls == llm_server.stats.ok - calls


def test_datasets_on_s3_read_back_with_pyarrow_and_duckdb_and_a_rerun_skips_them(
        tmp_path, remote_config, llm_server, s3_root):
    import duckdb
    from fsspec.implementations.arrow import ArrowFSWrapper

    pairs = write_pairs(tmp_path / "pairs.jsonl", 6)
    cfg = write_config(tmp_path / "c.yaml", remote_config(distractor={"activation_probability": 0.5}))
    first = run_flow(pairs, s3_root, cfg, max_concurrency=4, wave_size=4)
    assert (first["done"], first["failed"]) == (6, 0)
    interactions = read_table(s3_root, "interactions")
    assert interactions.num_rows == 6 and len(set(interactions.column("interaction_id").to_pylist())) == 6
    assert read_table(s3_root, "token_usage").num_rows == llm_server.stats.ok

    class S3(ArrowFSWrapper):  # DuckDB reads s3:// through the same pyarrow filesystem (httpfs is not offline)
        protocol = "s3"

    fs, _ = pafs.FileSystem.from_uri(s3_root)
    con = duckdb.connect()
    con.register_filesystem(S3(fs))
    [(count, turns)] = con.execute(f"SELECT count(*), sum(num_turns) FROM read_parquet("
                                   f"'{s3_root}/interactions/**/*.parquet', hive_partitioning = true)").fetchall()
    assert (count, turns) == (6, sum(interactions.column("num_turns").to_pylist()))
    splits = dict(con.execute(f"SELECT split, count(*) FROM read_parquet('{s3_root}/training/**/*.parquet', "
                          "hive_partitioning = true) GROUP BY split").fetchall())
    assert sum(splits.values()) == 6

    dataset = Dataset(s3_root)  # the same layout as on disk
    assert dataset.read_json("stats.json")["interactions"] == 6
    assert len(dataset.interaction_storage().ids()) == 6
    exports = {info.base_name for info in fs.get_file_info(pafs.FileSelector(dataset.path("exports")))}
    assert {"train.chat.jsonl", "statistics.json"} <= exports

    calls = len(llm_server.requests)
    again = run_flow(pairs, s3_root, cfg, max_concurrency=4)
    assert (again["skipped"], again["done"], len(llm_server.requests)) == (6, 0, calls)
    assert read_table(s3_root, "interactions").num_rows == 6


def test_on_s3_what_was_stored_before_a_failed_write_is_recovered_without_a_call(
        tmp_path, remote_config, llm_server, s3_root, monkeypatch):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 5)
    cfg = write_config(tmp_path / "c.yaml", remote_config())

    def refused(self, path, table):
        raise OSError("AWS Error ACCESS_DENIED during PutObject operation")

    with monkeypatch.context() as patch, pytest.raises(Exception, match="ACCESS_DENIED"):
        patch.setattr(Dataset, "_write_table", refused)
        run_flow(pairs, s3_root, cfg)
    assert len(Dataset(s3_root).interaction_storage().ids()) == 5
    calls = len(llm_server.requests)
    summary = run_flow(pairs, s3_root, cfg)
    assert (summary["recovered"], summary["done"], len(llm_server.requests)) == (5, 5, calls)
    assert read_table(s3_root, "interactions").num_rows == 5


def test_a_missing_bucket_is_refused_before_any_call(tmp_path, s3_root, capsys, llm_server):
    from personasim.cli import main

    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    missing = s3_root.replace("s3://", "s3://no-such-bucket-")
    assert main(["run", "--input", str(pairs), "--output", missing]) == 2
    out = capsys.readouterr().out
    assert "cannot write to dataset root s3://no-such-bucket-" in out and llm_server.requests == []


def test_each_worker_takes_its_share_of_the_endpoint_limits():
    config = load_config({"llm": {"default": {"requests_per_minute": 600, "tokens_per_minute": 90_000}}})
    shared = with_worker_share(with_request_limit(config, 16), 3)
    endpoint = shared.connections.user_simulator
    assert (endpoint.requests_per_minute, endpoint.tokens_per_minute) == (200, 30_000)
    assert endpoint.max_concurrent_requests == 5  # 3 x 5 stays within 16
    assert with_worker_share(config, 1) is config
    assert shared.fingerprint() == config.fingerprint()  # limits never change what is generated


def test_a_runner_whose_extra_is_missing_is_refused_before_prefect_starts(tmp_path, monkeypatch, capsys):
    import importlib

    from personasim.cli import main

    real = importlib.import_module

    def without_ray(name, *args):
        if name == "prefect_ray":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_ray)
    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    code = main(["run", "--input", str(pairs), "--output", str(tmp_path / "ds"), "--task-runner", "ray"])
    out = capsys.readouterr().out
    assert code == 2 and "pip install 'personasim[ray]'" in out and out.count("\n") == 1
    assert not (tmp_path / "ds" / "interactions").exists()


@pytest.mark.parametrize("options", [{"runner_address": "tcp://127.0.0.1:8786"}, {"workers": 4},
                                     {"task_runner": "dask", "runner_address": "tcp://h:8786", "workers": 2}])
def test_cluster_options_that_would_be_ignored_are_refused(options):
    from pydantic import ValidationError

    from personasim.flows.generate import RunParameters

    with pytest.raises(ValidationError, match="runner_address|workers"):
        RunParameters(input_path="pairs.jsonl", **options)


def test_a_worker_lets_go_of_runs_idle_for_long_but_never_of_one_in_use(tmp_path, monkeypatch):
    import pickle

    from personasim import run_handle

    config = load_config(None)

    def arrive(name):
        """A run's handle as a worker process receives it with a task: pickled."""
        return pickle.loads(pickle.dumps(run_handle.RunHandle(name, config, str(tmp_path / name), 2)))

    monkeypatch.setattr(run_handle, "IDLE_SECONDS", 0.0)
    old = arrive("old")
    old_pool = old.engine.pool
    busy = arrive("busy")
    try:
        with busy.in_use():
            busy_engine = busy.engine
            assert arrive("busy") is busy and busy.engine is busy_engine  # one engine per run and process
            arrive("new")
            assert "old" not in run_handle._worker_runs  # idle: its clients closed, its pool shut down
            with pytest.raises(RuntimeError):
                old_pool.submit(print)
            assert run_handle._worker_runs["busy"] is busy  # in use by a task: kept
    finally:
        for name in ("busy", "new"):
            run_handle._worker_runs.pop(name).close()


@pytest.mark.slow
def test_the_command_line_on_a_dask_cluster_with_the_embedded_api_leaves_no_server_behind(tmp_path):
    """With no PREFECT_API_URL, workers must use the run's embedded API, not start their own."""
    import sys
    import time

    pairs = write_pairs(tmp_path / "pairs.jsonl", 6)
    code, out, processes = run_watched([sys.executable, "-m", "personasim", "run", "--input", str(pairs), "--output",
                                        str(tmp_path / "ds"), "--task-runner", "dask", "--workers", "2"])
    assert code == 0, out[-3000:]
    assert "6 done, 0 failed" in out and "Traceback" not in out
    assert read_table(str(tmp_path / "ds"), "interactions").num_rows == 6
    assert processes  # the run had its server and workers below it; none of them outlives it
    deadline = time.monotonic() + 10
    while still_running(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not still_running(processes)
