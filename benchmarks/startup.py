"""A small run from command to exit: with no Prefect server (the embedded API), with the local
server that stays (`personasim server start`), and the library alone, side by side.

Run by hand from the repository root (with the project installed):

    python benchmarks/startup.py                 # one pair, five runs of each, interleaved
    python benchmarks/startup.py --pairs 10 --repeat 3
    python benchmarks/startup.py --ctrl-c        # also: Ctrl-C with 32 calls in flight at 1 s latency

Each run is the whole command (`personasim run`, one pair unless told) against a scripted server
with no latency, in a fresh dataset folder and a PREFECT_HOME of the benchmark's own (the local
server's database there, started once before the clock and stopped at the end; a first run in
each home, not counted, creates its database, as a user's first run does once). The table has
the min and median wall, the CPU of the command's process tree (the local server's not counted:
it was running before and goes on after), the time to the first call and from the last call to
the exit, as the scripted server saw them. With --ctrl-c, 96 pairs with 32 calls in flight at 1 s
latency are interrupted (SIGINT) once 8 are stored, with and without the local server: the seconds
from the signal to the exit (the run lets pairs in flight finish for a grace period, commits what
is done and exits 130).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import KEY_ENV, run_measured, server_stats, start_server, write_inputs  # noqa: E402 - the same harness

SYSTEMS = ("no server (embedded API)", "local server running", "library alone")


def command(system: str, pairs_path: Path, config_path: Path, out: Path) -> list[str]:
    if system == "library alone":
        peers = Path(__file__).resolve().parent / "peers.py"
        return [sys.executable, str(peers), "--library", str(pairs_path), str(config_path), "16", str(out)]
    return [sys.executable, "-m", "personasim", "run", "--input", str(pairs_path), "--output", str(out),
            "--config", str(config_path)]


def measure(system: str, pairs: int, home: Path) -> dict:
    server, base_url = start_server(0.0, 0.0, None)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            pairs_path, config_path = write_inputs(work, pairs, base_url, 16, None)
            started = time.time()
            wall, cpu, _, _, _ = run_measured(command(system, pairs_path, config_path, work / "ds"),
                                              env={"PREFECT_HOME": str(home)})
        stats = server_stats(base_url)
    finally:
        server.terminate()
        server.wait()
    return {"wall_s": wall, "cpu_s": cpu, "first_call_s": stats["first_at"] - started,
            "after_last_s": started + wall - stats["last_at"]}


def ctrl_c(home: Path) -> float:
    """Seconds from SIGINT to the command's exit, 32 calls in flight at 1 s latency."""
    server, base_url = start_server(1.0, 0.0, None)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            pairs_path, config_path = write_inputs(work, 96, base_url, 32, None)
            cmd = command("no server", pairs_path, config_path, work / "ds") + ["--max-concurrency", "32"]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env={**os.environ, KEY_ENV: "bench-key", "PREFECT_HOME": str(home)})
            while len(list((work / "ds" / "_store").glob("ix-*.json"))) < 8:
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            interrupted = time.perf_counter()
            code = proc.wait(120)
            if code != 130:
                raise RuntimeError(f"the interrupted run exited {code}, not 130")
            return time.perf_counter() - interrupted
    finally:
        server.terminate()
        server.wait()


def local_server(home: Path, action: str) -> None:
    """`personasim server start|stop` in `home` (a port of its own, not a user's 4200)."""
    port = ["--port", "4287"] if action == "start" else []
    subprocess.run([sys.executable, "-m", "personasim", "server", action, *port], capture_output=True, check=True,
                   env={**os.environ, "PREFECT_HOME": str(home)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ctrl-c", action="store_true", help="also time Ctrl-C with 32 calls in flight")
    args = parser.parse_args()
    rows: dict[str, list[dict]] = {system: [] for system in SYSTEMS}
    with tempfile.TemporaryDirectory() as tmp:
        homes = {system: Path(tmp) / f"home-{n}" for n, system in enumerate(SYSTEMS)}  # the server in one only
        local_server(homes["local server running"], "start")
        try:
            for system in SYSTEMS:  # a first run creates its home's database: once per machine, not counted
                measure(system, args.pairs, homes[system])
            for _ in range(args.repeat):
                for system in SYSTEMS:  # interleaved: a slow spell of the machine hits every system alike
                    rows[system].append(measure(system, args.pairs, homes[system]))
            stops = {system: [ctrl_c(homes[system]) for _ in range(args.repeat if args.ctrl_c else 0)]
                     for system in SYSTEMS[:2]}
        finally:
            local_server(homes["local server running"], "stop")
    print(f"\n{args.pairs} pair(s), {args.repeat} runs each, interleaved")
    print("| run | wall min / median | CPU s (tree) | first call after | exit after last call |")
    print("|---|---|---|---|---|")
    for system, runs in rows.items():
        walls = sorted(r["wall_s"] for r in runs)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"| {system} | {walls[0]:.2f} / {med['wall_s']:.2f} s | {med['cpu_s']:.2f} | "
              f"{med['first_call_s']:.2f} s | {med['after_last_s']:.2f} s |")
    if args.ctrl_c:
        print("\n| Ctrl-C, 32 calls in flight at 1 s | SIGINT to exit, min / median / max |\n|---|---|")
        for system, took in stops.items():
            print(f"| {system} | {min(took):.1f} / {statistics.median(took):.1f} / {max(took):.1f} s |")


if __name__ == "__main__":
    main()
