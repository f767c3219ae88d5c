"""The `personasim` command: run the flow locally, validate inputs, print a dataset's statistics."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from personasim.errors import PersonasimError

console = Console()

# Offline by default: no telemetry, quiet logs; a user's own settings still win.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # The embedded server logs tracebacks when it is stopped mid-flush at the end of a run.
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    # A local Dask cluster logs every worker's start and stop at INFO.
    "DASK_LOGGING__DISTRIBUTED": "warning",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="personasim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="generate interactions into a dataset (the Prefect flow, locally)")
    run.add_argument("--input", required=True, help="pair file (JSONL, JSON, CSV, Parquet) or a directory")
    run.add_argument("--output", default="output/dataset", help="dataset root (directory or s3:// URL)")
    run.add_argument("--config", help="YAML config (default: the offline backend)")
    run.add_argument("--backend", choices=("config", "local"), default="config",
                     help="'local': run every role on a llama.cpp model started for this run")
    run.add_argument("--local-model", default="smollm2", help="with --backend local: 'smollm2' or a GGUF path")
    run.add_argument("--run-name")
    run.add_argument("--seed", type=int)
    run.add_argument("--max-concurrency", type=int, default=16)
    run.add_argument("--limit", type=int)
    run.add_argument("--pairs-per-task", type=int,
                     help="pairs per Prefect task run (default: from the pairs and the concurrency)")
    run.add_argument("--wave-size", type=int)
    run.add_argument("--task-runner", choices=("thread", "dask", "ray"), default="thread",
                     help="where pair tasks run: threads here, or Dask/Ray worker processes")
    run.add_argument("--runner-address", help="an existing Dask scheduler or Ray cluster (default: a local one)")
    run.add_argument("--workers", type=int, help="worker processes of a local Dask/Ray cluster (default: cores)")
    run.add_argument("--summary-json", help="also write the run's summary to this file")
    validate = sub.add_parser("validate", help="check the input and config, print what is wrong")
    validate.add_argument("--input", required=True)
    validate.add_argument("--config")
    stats = sub.add_parser("stats", help="print a dataset's statistics summary")
    stats.add_argument("dataset", help="dataset root")
    stats.add_argument("--json", action="store_true", help="print stats.json as JSON")
    return parser


def _validate(input_path: str, config_path: str | None) -> tuple[Any, list]:
    from personasim.config import load_config
    from personasim.inputs import load_input

    config = load_config(config_path)
    pairs = load_input(input_path)
    return config, pairs


def _print_stats(root: str, stats: dict[str, Any]) -> None:
    table = Table(title=f"dataset {root}", show_header=False)
    spent = stats["spent"]
    rows = [
        ("interactions", stats["interactions"]), ("failed pairs", stats["failed_pairs"]),
        ("personas", stats["personas"]), ("average turns", stats["avg_turns"]),
        ("noise rate", stats["noise_rate"]), ("layers", stats["layer_distribution"]),
        ("LLM calls", stats["tokens"]["calls"]),
        ("tokens in / out", f"{stats['tokens']['input_tokens']:,} / {stats['tokens']['output_tokens']:,}"),
        ("estimated cost (USD)", stats["cost"]["total_usd"]),
        ("spent, failed and interrupted pairs included",
         f"{spent['calls']:,} calls, {spent['input_tokens']:,} / {spent['output_tokens']:,} tokens, "
         f"USD {spent['cost']['total_usd']}"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    console.print(quality_table(stats["quality"]))


def quality_table(quality: dict[str, Any]) -> Table:
    """The quality section as a table: one row per figure."""
    from personasim.dataset.quality import summary_rows

    table = Table(title="quality", show_header=False)
    for name, value in summary_rows(quality):
        table.add_row(name, value)
    return table


def _run(args: argparse.Namespace) -> int:
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    config, pairs = _validate(args.input, args.config)  # fail fast, before Prefect starts
    from personasim.dataset import Dataset

    Dataset(args.output).check_writable()
    if args.task_runner != "thread":
        from personasim.flows.runners import runner_class

        runner_class(args.task_runner)
    from personasim import watchdog

    watchdog.start()  # the run's child processes (Prefect's API, a local model or cluster) end with it
    provider = "local" if args.backend == "local" else config.spec.models.assistant[0].provider
    console.print(f"[bold]personasim[/]: {len(pairs)} pairs from {args.input}, provider {provider}; "
                  "starting the flow…")
    from personasim.flows.generate import generate_interactions

    summary = generate_interactions(input_path=args.input, dataset_root=args.output, config_path=args.config,
                                    backend=args.backend, local_model=args.local_model,
                                    run_name=args.run_name, seed=args.seed, max_concurrency=args.max_concurrency,
                                    limit=args.limit, pairs_per_task=args.pairs_per_task,
                                    wave_size=args.wave_size, task_runner=args.task_runner,
                                    runner_address=args.runner_address, workers=args.workers)
    console.print(f"run {summary['run_id']}: {summary['done']} done, {summary['failed']} failed, "
                  f"{summary['skipped']} skipped, {summary['recovered']} recovered")
    _print_stats(args.output, summary["statistics"])
    if args.summary_json:
        with open(args.summary_json, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2, default=str)
    console.print(f"dataset written to [bold]{os.path.abspath(args.output)}[/]")
    return 1 if summary["failed"] and not summary["done"] and not summary["skipped"] else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "validate":
            config, pairs = _validate(args.input, args.config)
            console.print(f"ok: {len(pairs)} pairs from {args.input}; config fingerprint {config.fingerprint()}")
            return 0
        from personasim.dataset import Dataset

        stats = Dataset(args.dataset).read_json("stats.json")
        if stats is None:
            raise PersonasimError(f"{args.dataset}: no stats.json (not a personasim dataset, or no run finished)")
        if args.json:
            print(json.dumps(stats, indent=2))
        else:
            _print_stats(args.dataset, stats)
        return 0
    except PersonasimError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
