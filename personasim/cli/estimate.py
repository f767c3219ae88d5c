"""`personasim estimate` and `personasim validate`: what a run will cost, and whether it can start."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from personasim.cli.common import Commands, add_command, add_inputs, console, positive, validate


def add(sub: Commands) -> None:
    check = add_command(sub, "validate", "check the input, the config and the API keys, print the first problem")
    add_inputs(check)
    estimate = add_command(sub, "estimate", "projected calls, tokens and cost of a run, before anything is paid")
    add_inputs(estimate)
    estimate.add_argument("--output", default=None,
                          help="the run's dataset: what it holds is skipped, and calibrates the figures")
    estimate.add_argument("--limit", type=positive(int), default=None, help="only the first N pairs of the input")
    estimate.add_argument("--json", action="store_true", help="print the estimate as JSON")


def main_validate(args: argparse.Namespace) -> int:
    config, pairs = validate(args)
    console.print(f"ok: {len(pairs)} pairs from {args.input}; config fingerprint {config.fingerprint()}")
    return 0


def main(args: argparse.Namespace) -> int:
    from personasim.estimate import estimate_run

    config, pairs = validate(args)
    dataset = None
    if args.output:
        from personasim.dataset import Dataset
        from personasim.engine import interaction_id_for

        dataset = Dataset(args.output)
        done = dataset.interaction_ids()
        pairs = [p for p in pairs if interaction_id_for(p, config.seed, config.fingerprint()) not in done]
    result = estimate_run(pairs, config, dataset)
    totals = result.totals()
    if args.json:
        print(json.dumps({"pairs": result.pairs, "calibrated_from": result.calibrated_from, **totals,
                          "by_model": result.by_model, "cost": result.cost}, indent=2))
        return 0
    basis = (f"calibrated from {result.calibrated_from} interactions in {args.output}" if result.calibrated_from
             else "modelled from the config (assumed reply lengths; a dataset of the same config calibrates it)")
    table = Table(title=f"estimate for {result.pairs} pairs", show_header=False)
    table.add_row("LLM calls", f"{totals['calls']:,}")
    table.add_row("tokens in / out", f"{totals['input_tokens']:,} / {totals['output_tokens']:,}")
    table.add_row("cost (USD)", str(result.cost["total_usd"]))
    table.add_row("models without a price", ", ".join(result.cost["unpriced_models"]) or "none")
    table.add_row("basis", basis)
    console.print(table)
    return 0
