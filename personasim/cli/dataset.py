"""The commands that read a finished dataset: `stats`, `report`, `compact`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from rich.table import Table

from personasim.cli.common import Commands, add_command, console, finished_dataset, positive


def add(sub: Commands) -> None:
    stats = add_command(sub, "stats", "print a dataset's statistics summary")
    stats.add_argument("dataset", help="dataset root")
    stats.add_argument("--json", action="store_true", help="print stats.json as JSON")
    compact = add_command(sub, "compact", "merge each partition's small wave files into a few (every run does it too)")
    compact.add_argument("dataset", help="dataset root")
    report = add_command(sub, "report", "one self-contained HTML file: summary, plots and a conversation browser")
    report.add_argument("dataset", help="dataset root")
    report.add_argument("--to", default=None, help="the HTML file to write (default: report.html in the dataset)")
    report.add_argument("--max-conversations", type=positive(int), default=2000,
                        help="conversations in the browser (a fixed sample when the dataset holds more)")


def print_stats(root: str, stats: Mapping[str, Any]) -> None:
    from personasim.dataset.figures import rich
    from personasim.dataset.judging_stats import judging_rows
    from personasim.dataset.persona_stats import persona_rows
    from personasim.dataset.quality import summary_rows
    from personasim.dataset.stats import count_rows

    for title, rows in ((f"dataset {root}", count_rows(stats)), ("quality", summary_rows(stats["quality"])),
                        ("personas", persona_rows(stats.get("persona_stages"))),
                        ("judged", judging_rows(stats.get("judging")))):
        if not rows:
            continue
        table = Table(title=title, show_header=False)
        for name, value in rows:
            table.add_row(name, rich(value))
        console.print(table)


def main_stats(args: argparse.Namespace) -> int:
    stats = finished_dataset(args.dataset).read_json("stats.json")
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print_stats(args.dataset, stats)
    return 0


def main_compact(args: argparse.Namespace) -> int:
    dataset = finished_dataset(args.dataset)
    with dataset.lock():
        dataset.prepare()
        console.print(dataset.compact().line(), highlight=False)
    return 0


def main_report(args: argparse.Namespace) -> int:
    from personasim.report import write_report

    path, seconds = write_report(finished_dataset(args.dataset), args.to, args.max_conversations)
    console.print(f"report written to [bold]{path}[/] in {seconds:.1f} s (open it in a browser; it needs no network)")
    return 0
