"""The estimate against what a run then costs, on a scripted OpenAI-compatible server.

    python benchmarks/estimate.py                 # calibrate on 50 pairs, estimate and run 200 more

Prints the modelled estimate (no data), the estimate calibrated on the first pairs, and the
actual cost of the 200 pairs, with the error of each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PRICES = {"fake-model": {"input_per_1m": 0.15, "output_per_1m": 0.60}}


def personasim(*args: object) -> str:
    run = subprocess.run([sys.executable, "-m", "personasim", *map(str, args)], capture_output=True, text=True,
                         env={**os.environ, "PERSONASIM_BENCH_KEY": "bench"})
    if run.returncode:
        raise RuntimeError(run.stdout[-2000:] + run.stderr[-2000:])
    return run.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=200)
    args = parser.parse_args()
    from personasim.testing import FakeOpenAIServer

    personas = [json.loads(line) for line in (ROOT / "datasets" / "sample_personas.jsonl").read_text().splitlines()]
    with FakeOpenAIServer(latency=0.02) as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        total = args.calibrate + args.pairs
        with open(work / "pairs.jsonl", "w") as handle:
            for i in range(total):
                persona = personas[i % len(personas)]
                query = persona["queries"][i % len(persona["queries"])]["original_query"]
                handle.write(json.dumps({"persona_id": persona["persona_id"], "persona_features":
                                         persona["persona_features"], "original_query": f"{query} (case {i})"}) + "\n")
        config = {"seed": 1, "llm": {"default": {"provider": "openai", "base_url": server.base_url,
                                                 "model": "fake-model", "api_key_env": "PERSONASIM_BENCH_KEY"}},
                  "distractor": {"activation_probability": 0.3}, "pricing": PRICES}
        (work / "c.yaml").write_text(yaml.safe_dump(config))
        common = ("--input", work / "pairs.jsonl", "--config", work / "c.yaml")
        personasim("run", *common, "--output", work / "ds", "--limit", args.calibrate)
        calibrated = json.loads(personasim("estimate", *common, "--output", work / "ds", "--json"))
        modelled = json.loads(personasim("estimate", *common, "--output", work / "empty", "--json"))
        personasim("run", *common, "--output", work / "ds", "--summary-json", work / "s.json")
        actual = json.loads((work / "s.json").read_text())["cost_usd"]
    rows = [("modelled from the config", modelled["cost"]["total_usd"] * args.pairs / total),
            (f"calibrated on {args.calibrate} pairs", calibrated["cost"]["total_usd"]), ("actual", actual)]
    for name, usd in rows:
        error = "" if name == "actual" else f"  ({(usd - actual) / actual:+.1%})"
        print(f"{name:>28}: ${usd:.5f}{error}")


if __name__ == "__main__":
    main()
