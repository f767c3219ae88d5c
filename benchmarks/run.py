"""Throughput against the endpoint's limit, CPU per pair, peak memory, rate limits held.

Run by hand from the repository root (with the project installed):

    python benchmarks/run.py                                  # library, flow, baseline at 50 ms
    python benchmarks/run.py --latency 1.0 --concurrency 64 --pairs 2000 --workloads flow
    python benchmarks/run.py --workloads rate_limit           # 600 requests/min held
    python benchmarks/run.py --workloads scale --scale-pairs 1000 10000
    python benchmarks/run.py --workloads flow,dask,ray --pairs 500 --latency 0.5 --concurrency 32

Each workload runs in its own process against a latency server in another process (so neither
steals the other's interpreter); CPU and peak RSS are the workload process's own (wait4).
`dask` and `ray` are the flow with its pair tasks on a local cluster of `--workers` processes;
`wall_s` includes starting the cluster. `scale` also reads what the run wrote, as its users will:
Parquet files per 10k pairs (every table) and DuckDB's seconds to count the messages and to group
them by interaction and role.
With per-call latency L and C calls in flight, K calls cannot finish faster than K * L / C:
efficiency = that ideal / the measured seconds. The table is printed and written as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PERSONA = {"role": "analyst", "communication_style": "casual", "technical_level": "intermediate",
           "query_length_pref": "concise", "tone": "friendly"}
KEY_ENV = "PERSONASIM_BENCH_KEY"
PR_SET_CHILD_SUBREAPER = 36  # prctl(2)
PAIRS_PER_TASK = os.environ.get("PERSONASIM_BENCH_PAIRS_PER_TASK")  # default: the flow chooses


# -- the pieces each workload needs ------------------------------------------------------------
def start_server(latency: float, jitter: float, rpm: float | None) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "personasim.testing", "--latency", str(latency),
           "--jitter", str(jitter)] + (["--rpm", str(rpm)] if rpm else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def server_stats(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/_stats", timeout=10) as response:
        return json.loads(response.read())


def write_inputs(workdir: Path, pairs: int, base_url: str, concurrency: int, rpm: float | None) -> tuple[Path, Path]:
    pairs_path = workdir / "pairs.jsonl"
    with open(pairs_path, "w") as handle:
        for i in range(pairs):
            handle.write(json.dumps({"persona_id": f"bench{i}", "persona_features": PERSONA,
                                     "queries": [{"query_id": "q", "original_query":
                                                  f"how should I plan project number {i} with my team?"}]}) + "\n")
    default = {"provider": "openai", "base_url": base_url, "model": "bench-model", "api_key_env": KEY_ENV,
               "timeout": 30, "max_tokens": 256}
    if rpm:
        default["requests_per_minute"] = rpm
    config = {"seed": 1, "llm": {"default": default}, "retry": {"max_retries": 8, "max_wait": 30},
              "distractor": {"activation_probability": 0.3}}
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return pairs_path, config_path


def _peak_rss_kb(pid: int) -> int:
    """VmHWM: the process's own peak resident set, without its children (the Prefect server)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0


def _adopt_orphans() -> None:
    """Children a measured command leaves running when it exits (personasim's command lets Prefect's
    API finish stopping on its own; its watchdog outlives it by design) come to this process, which
    reaps them: their CPU and memory count, as they would had the command waited for them."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str, int]:
    """(wall seconds to the command's exit, CPU seconds of the process tree, peak RSS MB of the
    tree's largest process, stdout, the process's own peak MB)."""
    from personasim.watchdog import descendants

    _adopt_orphans()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, KEY_ENV: "bench-key", **(env or {})})
    own_peak = [0]
    below: set[int] = set()
    reaped = threading.Event()

    def watch() -> None:  # never poll(): that would reap the process before wait4 reads its usage
        while not reaped.wait(0.5):
            own_peak[0] = max(own_peak[0], _peak_rss_kb(proc.pid))
            below.update(pid for pid, _ in descendants(proc.pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out = proc.stdout.read()
    own_peak[0] = max(own_peak[0], _peak_rss_kb(proc.pid))  # still readable until reaped
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    reaped.set()
    watcher.join()
    cpu, peak = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
    while below:  # left running at the exit, now ours (a pid the command reaped is not our child): each
        # reaped as it ends, in any order (the watchdog waits for the server to be gone, zombies too)
        for pid in list(below):
            try:
                ended, _, left = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                below.discard(pid)
                continue
            if ended:
                below.discard(pid)
                cpu, peak = cpu + left.ru_utime + left.ru_stime, max(peak, left.ru_maxrss)
        time.sleep(0.05)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:4]} failed with {os.waitstatus_to_exitcode(status)}")
    return wall, cpu, peak // 1024, out, own_peak[0] // 1024


def read_back(root: Path, pairs: int) -> dict:
    """How the written dataset reads: files per 10k pairs and DuckDB's time to count and group."""
    import duckdb

    files = list(root.rglob("*.parquet"))
    glob = str(root / "messages" / "**" / "*.parquet")
    with duckdb.connect() as db:
        started = time.perf_counter()
        db.sql(f"select count(*) from read_parquet('{glob}', hive_partitioning = true)").fetchall()
        counted = time.perf_counter()
        db.sql(f"select interaction_id, role, count(*), sum(length(content)) from read_parquet('{glob}', "
               "hive_partitioning = true) group by all").fetchall()
        grouped = time.perf_counter()
    return {"files_per_10k_pairs": round(len(files) * 10_000 / pairs), "duckdb_count_s": round(counted - started, 3),
            "duckdb_group_s": round(grouped - counted, 3)}


# -- workload processes -------------------------------------------------------------------------
def worker_library(pairs_path: str, config_path: str, concurrency: int) -> None:
    from personasim.inputs import load_input
    from personasim.interaction_generator import InteractionGenerator, InteractionStorage

    rows = [p.to_dict() for p in load_input(pairs_path)]
    rows = [{k: v for k, v in r.items() if k not in ("source", "adapted_query", "target_turns", "system_prompt")}
            for r in rows]
    generator = InteractionGenerator.from_config(config_path)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        done = generator.generate_interactions_batch(rows, show_progress=False, max_workers=concurrency,
                                                     storage=InteractionStorage(tmp))
        print(json.dumps({"seconds": time.perf_counter() - started, "done": len(done)}))


def worker_baseline(base_url: str, calls: int, concurrency: int) -> None:
    """The floor: the same number of calls from a bare asyncio loop with a semaphore."""
    from openai import AsyncOpenAI

    async def main() -> float:
        client = AsyncOpenAI(base_url=base_url, api_key="bench-key", max_retries=8)
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                await client.chat.completions.create(
                    model="bench-model", max_tokens=256,
                    messages=[{"role": "user", "content": f"how should I plan project number {i}?"}])

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        return time.perf_counter() - started

    print(json.dumps({"seconds": asyncio.run(main())}))


# -- the benchmark ------------------------------------------------------------------------------
RUNNERS = ("dask", "ray")  # workloads that are the flow on another task runner


def measure(workload: str, pairs: int, latency: float, concurrency: int, jitter: float, rpm: float | None,
            calls_hint: int | None, workers: int) -> dict:
    server, base_url = start_server(latency, jitter, rpm)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            pairs_path, config_path = write_inputs(workdir, pairs, base_url, concurrency, rpm)
            startup = 0.0
            read: dict = {}
            if workload == "library":
                cmd = [sys.executable, __file__, "--worker", "library", str(pairs_path), str(config_path),
                       str(concurrency)]
            elif workload == "baseline":
                cmd = [sys.executable, __file__, "--worker", "baseline", base_url, str(calls_hint), str(concurrency)]
            else:  # flow, scale, rate_limit, dask, ray: the whole `personasim run`
                summary_path = workdir / "summary.json"
                cmd = [sys.executable, "-m", "personasim", "run", "--input", str(pairs_path), "--output",
                       str(workdir / "ds"), "--config", str(config_path), "--max-concurrency", str(concurrency),
                       "--summary-json", str(summary_path)]
                if PAIRS_PER_TASK:
                    cmd += ["--pairs-per-task", PAIRS_PER_TASK]
                if workload in RUNNERS:
                    cmd += ["--task-runner", workload, "--workers", str(workers)]
            wall, cpu, rss, out, own_rss = run_measured(cmd)
            if workload in ("library", "baseline"):
                seconds = json.loads(out.strip().splitlines()[-1])["seconds"]
            else:
                summary = json.loads(summary_path.read_text())
                seconds = summary["elapsed_s"]
                startup = wall - seconds
                if summary["done"] != pairs:
                    raise RuntimeError(f"flow finished {summary['done']} of {pairs} pairs")
                if workload == "scale":
                    read = read_back(workdir / "ds", pairs)
        stats = server_stats(base_url)
    finally:
        server.terminate()
        server.wait()
    calls = stats["ok"]
    ideal = calls * latency / concurrency
    if rpm:
        ideal = max(ideal, calls / (rpm / 60.0))
    return {
        "workload": workload, "pairs": pairs, "calls": calls, "latency_s": latency, "concurrency": concurrency,
        "ideal_s": round(ideal, 2), "actual_s": round(seconds, 2), "wall_s": round(wall, 2),
        "efficiency": round(ideal / seconds, 3),
        "pairs_per_s": round(pairs / seconds, 2), "calls_per_s": round(calls / seconds, 2),
        "calls_per_min": round(calls / seconds * 60, 1),
        "cpu_ms_per_pair": round(cpu / pairs * 1000, 1), "peak_rss_mb": own_rss, "peak_tree_rss_mb": rss,
        "startup_s": round(startup, 1),
        "http_429": stats["rate_limited"], "share_429": round(stats["rate_limited"] / max(stats["requests"], 1), 4),
        **read,
    }


def median_of(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["actual_s"])
    row = dict(ordered[len(ordered) // 2])
    row["runs"] = len(runs)
    row["actual_s_spread"] = [r["actual_s"] for r in runs]
    return row


COLUMNS = ("workload", "pairs", "calls", "latency_s", "concurrency", "ideal_s", "actual_s", "wall_s", "efficiency",
           "pairs_per_s", "calls_per_s", "cpu_ms_per_pair", "peak_rss_mb", "peak_tree_rss_mb", "startup_s", "http_429",
           "files_per_10k_pairs", "duckdb_count_s", "duckdb_group_s")


def print_table(rows: list[dict]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in COLUMNS}
    print("  ".join(c.rjust(widths[c]) for c in COLUMNS))
    for row in rows:
        print("  ".join(str(row.get(c, "")).rjust(widths[c]) for c in COLUMNS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--workloads", default="library,flow,baseline",
                        help="comma-separated: library, flow, baseline, rate_limit, scale, dask, ray")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="runs per workload; the median is reported")
    parser.add_argument("--rpm", type=float, default=600, help="the rate_limit workload's requests/minute")
    parser.add_argument("--rpm-pairs", type=int, default=150)
    parser.add_argument("--scale-pairs", type=int, nargs="+", default=[1000])
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the dask and ray workloads")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "latest.json"))
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "library":
            worker_library(rest[0], rest[1], int(rest[2]))
        else:
            worker_baseline(rest[0], int(rest[1]), int(rest[2]))
        return

    rows, calls_per_pair = [], None
    for workload in args.workloads.split(","):
        plans = {"scale": [(n, args.latency, None) for n in args.scale_pairs],
                 "rate_limit": [(args.rpm_pairs, args.latency, args.rpm)]}.get(
            workload, [(args.pairs, args.latency, None)])
        for pairs, latency, rpm in plans:
            hint = round(calls_per_pair * pairs) if calls_per_pair else pairs * 8
            runs = [measure(workload, pairs, latency, args.concurrency, args.jitter, rpm, hint, args.workers)
                    for _ in range(1 if workload in ("scale", "rate_limit") else args.repeat)]
            row = median_of(runs)
            if workload in ("library", "flow", *RUNNERS):
                calls_per_pair = row["calls"] / row["pairs"]
            rows.append(row)
            print(f"{workload}: {row['actual_s']} s, efficiency {row['efficiency']}", file=sys.stderr)
    print_table(rows)
    baseline = next((r for r in rows if r["workload"] == "baseline"), None)
    for row in rows:
        if baseline and row["workload"] in ("flow", "library", *RUNNERS):
            print(f"{row['workload']} pairs/s = {row['pairs_per_s'] / baseline['pairs_per_s']:.0%} of the "
                  f"bare-asyncio baseline's")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "args": vars(args),
                                           "rows": rows}, indent=2))
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
