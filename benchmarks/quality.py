"""The data-quality benchmark: a run on a real (small) model, and what its contracts caught.

Run by hand from the repository root, with the local model installed (docs/running.md):

    python benchmarks/quality.py                       # 50 sample pairs on the bundled SmolLM2
    python benchmarks/quality.py --pairs 20 --model ~/models/qwen2.5-1.5b-instruct-q4_k_m.gguf

It runs `personasim run --backend local` into a fresh dataset and prints the violations by role
and reason before and after repair, the fallback and truncation rates and the whole quality
section, then checks that no message in the dataset breaks its contract unflagged.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as ds

ROOT = Path(__file__).resolve().parents[1]


def unflagged(root: Path) -> list[str]:
    """Messages in the dataset that break a contract and carry no flag (there must be none)."""
    from personasim.prompts import template
    from personasim.roles.contract import clean, common_problems

    messages = ds.dataset(root / "messages", format="parquet", partitioning="hive").to_table().to_pylist()
    found = []
    for m in messages:
        if m["role"] == "user":
            checked = common_problems(clean(m["clean_text"], cut_transcript=True), None, template("follow_up").template)
            if checked.cleaned or checked.problem:
                found.append(f"user turn {m['interaction_id']}/{m['turn']}: {checked.problem or checked.cleaned}")
        elif (m["finish_reason"] == "length") != m["truncated"]:
            found.append(f"assistant turn {m['interaction_id']}/{m['turn']}: cut but not flagged")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--model", default="smollm2", help="'smollm2' (bundled) or a GGUF path")
    parser.add_argument("--input", default=str(ROOT / "datasets" / "sample_personas.jsonl"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, summary_path = Path(tmp) / "ds", Path(tmp) / "summary.json"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "personasim", "run", "--input", args.input, "--output", str(root),
                        "--backend", "local", "--local-model", args.model, "--limit", str(args.pairs),
                        "--max-concurrency", "4", "--summary-json", str(summary_path)], check=True,
                       stdout=subprocess.DEVNULL)
        summary = json.loads(summary_path.read_text())
        stats = summary["statistics"]
        quality = stats["quality"]
        print(f"{summary['done']} done, {summary['failed']} failed of {summary['pairs']} pairs "
              f"in {time.perf_counter() - started:.0f} s; {stats['tokens']['calls']} calls")
        for when in ("before_repair", "after_repair"):
            print(f"violations {when.replace('_', ' ')}:")
            for role, reasons in quality["violations"][when].items():
                print(f"  {role}: {sum(reasons.values())}  {reasons}")
        print(json.dumps(quality, indent=2))
        problems = unflagged(root)
        print(f"unflagged contract breaches in the dataset: {len(problems)}")
        for line in problems[:20]:
            print("  " + line)


if __name__ == "__main__":
    main()
