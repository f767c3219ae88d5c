"""Is a local Prefect server still answering while a big run reports to it?

Run by hand from the repository root:

    python benchmarks/server_load.py                  # 10,000 pairs, offline backend, SQLite server
    python benchmarks/server_load.py --pairs 4000 --pairs-per-task 8   # the old default, for comparison

It starts `prefect server start` (a fresh SQLite database), runs `personasim run` against it, and
once a second, while the run goes, creates a flow run as another user would (and times it,
retrying a 503 "database is locked" as Prefect's client does). It prints one table: pairs, task
runs the run made, its wall time, and the creation latencies (median, 95th percentile, max, and
how many took over 2 s), then how many first attempts SQLite refused.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_pairs  # noqa: E402 - the same pair generator as the report benchmark

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--pairs-per-task", type=int, default=None, help="default: chosen by personasim")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="personasim-server-"))
    api = f"http://127.0.0.1:{_port()}/api"
    env = {**os.environ, "PREFECT_HOME": str(work / "home"), "PREFECT_API_URL": api, "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    port = api.split(":")[2].split("/")[0]
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port],
                              env={**env, "PREFECT_API_LOG_RETRYABLE_ERRORS": "true"},
                              stdout=(work / "server.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    http = httpx.Client(base_url=api, timeout=60)
    try:
        while True:
            try:
                if http.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        probe = http.post("/flows/", json={"name": "another-user"}).json()["id"]
        write_pairs(work / "pairs.jsonl", args.pairs)
        cmd = [str(BIN / "personasim"), "run", "--input", str(work / "pairs.jsonl"), "--output", str(work / "ds"),
               "--max-concurrency", "64"]
        if args.pairs_per_task:
            cmd += ["--pairs-per-task", str(args.pairs_per_task)]
        started = time.perf_counter()
        run = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        latencies, refused = [], Counter()
        next_week = (datetime.now(timezone.utc) + timedelta(days=7)).isoformat()
        while run.poll() is None:
            t = time.perf_counter()
            for attempt in range(5):  # 503 is the server's "retry me", as Prefect's own client does
                response = http.post("/flow_runs/", json={"flow_id": probe, "state": {  # next week: never late
                    "type": "SCHEDULED", "state_details": {"scheduled_time": next_week}}})
                if response.status_code != 503:
                    break
                refused[f"{response.status_code} {response.text[:60]}"] += 1
                time.sleep(0.25 * (attempt + 1))
            latencies.append(time.perf_counter() - t if response.status_code == 201 else float("inf"))
            time.sleep(max(0.0, 1.0 - (time.perf_counter() - t)))
        wall = time.perf_counter() - started
        task_runs = http.post("/task_runs/count", json={}).json()
        assert run.returncode == 0, f"the run exited {run.returncode}"
    finally:
        http.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print("| pairs | pairs per task | task runs | run wall | creations | median | p95 | max | over 2 s |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.pairs:,} | {args.pairs_per_task or 'auto'} | {task_runs:,} | {wall:.0f} s | {len(latencies)} | "
          f"{statistics.median(ordered) * 1000:.0f} ms | {p95 * 1000:.0f} ms | {ordered[-1] * 1000:.0f} ms | "
          f"{sum(1 for x in ordered if x > 2)} |")
    for reason, n in refused.most_common():
        print(f"first attempts refused (then retried): {n} x {reason}")


if __name__ == "__main__":
    main()
