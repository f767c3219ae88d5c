"""Judged runs on the bundled model: the distractor's fallback rate with a json_object response
format (the old way) and with the role's JSON schema, the gate's verdicts, the judge's scores and
the users' realism figures, side by side.

Run by hand from the repository root, with the local model installed (docs/running.md):

    python benchmarks/judged.py                      # 20 held-out-style pairs, SmolLM2, both formats
    python benchmarks/judged.py --pairs 8 --formats json_schema

The pairs are the sample personas with queries from the pool that no sample pair uses (held out),
the semantic distractor on every user turn, the bundled model in every role, the judge included
(`llm.judge`), the gate's rules and its judge check on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def held_out_pairs(path: Path, count: int) -> None:
    """The sample personas, each with pool queries past the first hundred (which no sample uses)."""
    personas = [json.loads(line) for line in (ROOT / "datasets" / "sample_personas.jsonl").read_text().splitlines()]
    pool = [json.loads(line)["prompt"] for line in (ROOT / "datasets" / "query_pool.jsonl").read_text().splitlines()]
    with open(path, "w") as out:
        for i in range(count):
            persona = personas[i % len(personas)]
            out.write(json.dumps({"persona_id": persona["persona_id"], "persona_features": persona["persona_features"],
                                  "original_query": pool[100 + 7 * i], "query_id": f"held-{i}"}) + "\n")


def run(form: str, pairs: Path, folder: Path, model: str) -> dict:
    config = {"seed": 11, "llm": {"default": {"structured_outputs": form}, "judge": {}},
              "generation": {"transfer_probability": 1.0},
              "distractor": {"type": "semantic", "activation_probability": 1.0}}
    (folder / f"{form}.yaml").write_text(yaml.safe_dump(config))
    summary = folder / f"{form}.json"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "personasim", "run", "--input", str(pairs), "--output",
                    str(folder / form), "--config", str(folder / f"{form}.yaml"), "--backend", "local",
                    "--local-model", model, "--max-concurrency", "4", "--summary-json", str(summary)],
                   check=True, stdout=subprocess.DEVNULL)
    return {**json.loads(summary.read_text()), "wall_s": round(time.perf_counter() - started)}


def report(form: str, result: dict) -> None:
    stats = result["statistics"]
    quality, gate, realism = stats["quality"], stats["gate"], stats["realism"]
    noise = [m for m in (stats.get("quality") or {}).get("violations", {}).get("after_repair", {}).get(
        "distractor", {}).items()]
    print(f"\n== {form}: {result['done']} done, {result['failed']} failed of {result['pairs']} pairs, "
          f"{stats['tokens']['calls']} calls, {result['wall_s']} s")
    print(f"distractor fallback rate {quality['noise_fallback_rate']} (drawn {quality['noise']['activation_rate']}); "
          f"unrepaired distractor violations {dict(noise)}")
    print(f"failure reasons {stats['failure_reasons']}; terminations {quality['termination_reasons']}")
    print(f"gate: {gate['gated_turns']} turns gated, {gate['redrafted_turns']} redrafted, drafts {gate['drafts']}, "
          f"why {gate['failure_reasons']}")
    for axis, figures in ((stats.get("judging") or {}).get("axes") or {}).items():
        print(f"score {axis:<18} mean {figures['mean']:<5} counts {figures['distribution']}")
    print("realism " + ", ".join(f"{k} {v}" for k, v in realism["overall"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--model", default="smollm2", help="'smollm2' (bundled) or a GGUF path")
    parser.add_argument("--formats", nargs="+", default=["json_object", "json_schema"],
                        choices=["off", "json_object", "json_schema"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        held_out_pairs(folder / "pairs.jsonl", args.pairs)
        for form in args.formats:
            report(form, run(form, folder / "pairs.jsonl", folder, args.model))


if __name__ == "__main__":
    main()
