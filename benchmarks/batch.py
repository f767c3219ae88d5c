"""Batch mode at scale against the test batch server, side by side with the same pairs online.

Run by hand from the repository root (with the project installed):

    python benchmarks/batch.py                        # 5,000 pairs in batch mode, 1,000 too (memory), online
    python benchmarks/batch.py --pairs 500 1000 --no-online

Each run is the whole command (`personasim run --mode batch`, Prefect included) against
`python -m personasim.testing` in its own process (its memory not counted), which runs every
batch at once (no simulated wait: the wall is personasim's own work, polls at 50 ms included),
answers the assistant with 600-word replies (a real answer's length, so later turns re-send
prompts long enough for the prompt cache) and reports cached tokens as OpenAI bills them
(prefixes from 1,024 tokens, in 128-token steps). Costs are gpt-4o-mini's list prices. The table:
rounds, batch files, lines, peak RSS of the run's process, wall, cached share of input tokens,
and the cost online, online with the cache, batch, and batch with the cache.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import KEY_ENV, PERSONA, run_measured, server_stats  # noqa: E402 - the same harness

PRICE = {"input_per_1m": 0.15, "cached_input_per_1m": 0.075, "output_per_1m": 0.60, "batch_discount": 0.5}


def start_server(answer_words: int) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "personasim.testing", "--latency", "0", "--answer-words", str(answer_words)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def write_inputs(workdir: Path, pairs: int, base_url: str) -> tuple[Path, Path]:
    queries = [json.loads(line)["prompt"] for line in Path("datasets/query_pool.jsonl").read_text().splitlines()]
    path = workdir / "pairs.jsonl"
    with open(path, "w") as handle:
        for i in range(0, pairs, 5):  # five queries per persona
            rows = [{"query_id": f"q{j}", "original_query": queries[(i + j) % len(queries)]}
                    for j in range(min(5, pairs - i))]
            handle.write(json.dumps({"persona_id": f"bench{i // 5}", "persona_features": PERSONA,
                                     "queries": rows}) + "\n")
    config = {"seed": 5, "llm": {"default": {"provider": "openai", "base_url": base_url, "model": "gpt-4o-mini",
                                             "api_key_env": KEY_ENV, "timeout": 60, "max_tokens": 512}},
              "distractor": {"activation_probability": 0.3}, "batch": {"poll_s": 0.05, "max_poll_s": 0.05},
              "pricing": {"gpt-4o-mini": PRICE}}
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return path, config_path


def measure(pairs: int, mode: str, answer_words: int) -> dict:
    server, base_url = start_server(answer_words)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            pairs_path, config_path = write_inputs(work, pairs, base_url)
            root = work / "ds"
            cmd = [sys.executable, "-m", "personasim", "run", "--input", str(pairs_path), "--output", str(root),
                   "--config", str(config_path), "--mode", mode, "--max-concurrency", "64"]
            wall, cpu, _, _, own_peak = run_measured(cmd)
            stats = json.loads((root / "stats.json").read_text())
            served = server_stats(base_url)
            rounds = files = 0
            if mode == "batch":
                with sqlite3.connect(root / "_batch" / "journal.sqlite") as db:
                    rounds, files = db.execute("SELECT COUNT(DISTINCT round), COUNT(*) FROM uploads").fetchone()
    finally:
        server.terminate()
        server.wait()
    tokens, cost = stats["tokens"], stats["cost"]
    return {"mode": mode, "pairs": pairs, "done": stats["interactions"], "rounds": rounds, "files": files,
            "lines": served["batch_lines"], "calls": tokens["calls"], "peak_mb": round(own_peak),
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "cached": round(tokens["cached_tokens"] / max(1, tokens["input_tokens"]), 3),
            "online_uncached_usd": cost["uncached_usd"], "online_usd": cost["online_usd"],
            "batch_uncached_usd": round(cost["uncached_usd"] * (1 - PRICE["batch_discount"]), 6),
            "batch_usd": round(cost["online_usd"] * (1 - PRICE["batch_discount"]), 6)}


def print_table(rows: list[dict]) -> None:
    columns = list(rows[0])
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--answer-words", type=int, default=600)
    parser.add_argument("--no-online", action="store_true", help="skip the online run of the largest size")
    args = parser.parse_args()
    rows = [measure(n, "batch", args.answer_words) for n in args.pairs]
    if not args.no_online:
        rows.append(measure(max(args.pairs), "online", args.answer_words))
    print_table(rows)


if __name__ == "__main__":
    main()
