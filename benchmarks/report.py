"""The report benchmark: size, build time and load time in headless Chromium for a big dataset.

Run by hand from the repository root (needs the dev extra and the system Chromium):

    python benchmarks/report.py                     # 10,000 pairs on the offline backend, then the report
    python benchmarks/report.py --dataset DIR       # the report of an existing dataset

Prints one table: interactions, conversations in the browser, file size, build time, time until
the first conversation shows in Chromium, and the time a filter takes.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROLES = ["nurse", "teacher", "farmer", "lawyer", "engineer", "student", "chef", "artist", "driver", "accountant"]


def write_pairs(path: Path, pairs: int) -> None:
    """`pairs` pairs, five queries per persona, varied features."""
    rng = random.Random(1)
    with path.open("w") as handle:
        for i in range(-(-pairs // 5)):
            features = {"role": rng.choice(ROLES), "communication_style": rng.choice(["casual", "formal", "plain"]),
                        "technical_level": rng.choice(["beginner", "intermediate", "advanced"]),
                        "query_length_pref": rng.choice(["concise", "detailed"]), "tone": "friendly"}
            queries = [{"query_id": f"q{j}", "original_query": f"How do I handle task {j} number "
                        f"{rng.randint(0, 999)} in my {features['role']} work?"} for j in range(min(5, pairs - 5 * i))]
            handle.write(json.dumps({"persona_id": f"persona{i:05d}", "persona_features": features,
                                     "queries": queries}) + "\n")


def load_times(report: Path) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(report.as_uri())
        page.wait_for_selector("article.conversation")
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        page.check("#flag-violation")
        page.locator("#count").text_content()
        filtered = time.perf_counter() - started
        browser.close()
    return loaded, filtered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="an existing dataset (default: generate one)")
    parser.add_argument("--pairs", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="personasim-report-"))
    dataset = Path(args.dataset) if args.dataset else work / "ds"
    if not args.dataset:
        write_pairs(work / "pairs.jsonl", args.pairs)
        subprocess.run([sys.executable, "-m", "personasim", "run", "--input", str(work / "pairs.jsonl"), "--output",
                        str(dataset), "--max-concurrency", "64"], check=True, capture_output=True, cwd=ROOT)
    from personasim.dataset import Dataset
    from personasim.report import write_report

    report = work / "report.html"
    path, built = write_report(Dataset(dataset), str(report))
    loaded, filtered = load_times(report)
    stats = json.loads((dataset / "stats.json").read_text())
    shown = min(stats["interactions"], 2000)
    print("| interactions | in the browser | size | build | load in Chromium | a filter |")
    print("|---|---|---|---|---|---|")
    print(f"| {stats['interactions']:,} | {shown:,} | {report.stat().st_size / 1e6:.1f} MB | {built:.2f} s | "
          f"{loaded:.2f} s | {filtered * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
