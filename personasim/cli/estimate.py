"""`personasim estimate` and `personasim validate`: what a run will cost, and whether it can start."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from rich.table import Table

from personasim.cli.common import Commands, add_command, add_inputs, console, positive, validate

if TYPE_CHECKING:
    from personasim.config import PersonasimConfig
    from personasim.dataset import Dataset
    from personasim.personas.source import PersonaSource
    from personasim.records import Pair


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
    config, pairs, source = validate(args)
    what = f"{len(pairs)} pairs from {args.input}" if source is None else source.describe()
    console.print(f"ok: {what}; config fingerprint {config.fingerprint()}", highlight=False)
    return 0


def _persona_pairs(source: PersonaSource, config: PersonasimConfig, dataset: Dataset | None, limit: int | None
                   ) -> tuple[list[Pair], list[dict[str, str]]]:
    """The pairs a persona run would make (the dataset's personas and assignments kept, no call),
    each persona's system prompt sized by its rule-based rendering until it is written, and the
    personas whose prompt is still to write."""
    from dataclasses import replace

    from personasim.dataset.persona_tables import stored_assignments, stored_personas
    from personasim.personas.plan import plan_personas
    from personasim.roles.formulator import fallback_prompt

    stored, in_table = stored_personas(dataset) if dataset is not None else ({}, set())
    plan = plan_personas(source, config.seed, stored, in_table, stored_assignments(dataset) if dataset else [],
                         config.formulation.enabled)
    pairs = plan.pairs(limit)
    formulate = [dict(p.features) for p in plan.needing_prompts(pairs)]
    return [replace(p, system_prompt=p.system_prompt or fallback_prompt(p.persona_features)) for p in pairs], formulate


def main(args: argparse.Namespace) -> int:
    from personasim.estimate import estimate_run

    config, pairs, source = validate(args)
    from personasim.dataset import Dataset
    from personasim.engine import interaction_id_for

    dataset = Dataset(args.output) if args.output else None
    formulate: list[dict[str, str]] = []
    if source is not None:
        pairs, formulate = _persona_pairs(source, config, dataset, args.limit)
    if dataset is not None:
        done = dataset.interaction_ids()
        pairs = [p for p in pairs if interaction_id_for(p, config.seed, config.fingerprint()) not in done]
    result = estimate_run(pairs, config, dataset, formulate)
    totals = result.totals()
    if args.json:
        print(json.dumps({"pairs": result.pairs, "formulations": result.formulations,
                          "calibrated_from": result.calibrated_from, **totals, "by_model": result.by_model,
                          "cached_share": result.cached_share, "cost": result.cost, "batch_cost": result.batch_cost},
                         indent=2))
        return 0
    basis = (f"calibrated from {result.calibrated_from} interactions in {args.output}" if result.calibrated_from
             else "modelled from the config (assumed reply lengths; a dataset of the same config calibrates it)")
    table = Table(title=f"estimate for {result.pairs} pairs", show_header=False)
    if source is not None:
        table.add_row("system prompts to write", f"{result.formulations:,} (one formulator call per persona)")
    table.add_row("LLM calls", f"{totals['calls']:,}")
    table.add_row("tokens in / out", f"{totals['input_tokens']:,} / {totals['output_tokens']:,}")
    table.add_row("expected from the prompt cache", f"{totals['cached_tokens']:,} input tokens "
                  f"({result.cached_share:.1%}; prefixes from 1,024 tokens, as OpenAI caches)")
    table.add_row("cost online (USD)", str(result.cost["total_usd"]))
    table.add_row("cost through a batch API (USD)", f"{result.batch_cost['total_usd']} (--mode batch)")
    table.add_row("models without a price", ", ".join(result.cost["unpriced_models"]) or "none")
    table.add_row("basis", basis)
    console.print(table)
    return 0
