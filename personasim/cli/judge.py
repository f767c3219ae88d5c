"""`personasim judge DIR`: score a dataset's conversations with the config's judges (what was
scored before is not asked again), then its statistics, report and exports made anew."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from personasim.cli.common import Commands, add_command, console, finished_dataset, positive


def add(sub: Commands) -> None:
    judge = add_command(sub, "judge", "score a dataset's conversations with the config's judge (llm.judge)")
    judge.add_argument("dataset", help="dataset root")
    judge.add_argument("--config", required=True, help="YAML config with llm.judge (and its judging section)")
    judge.add_argument("--max-concurrency", type=positive(int), default=8, help="judge calls in flight")


def main(args: argparse.Namespace) -> int:
    from personasim.config import load_config
    from personasim.dataset.judging import judge_dataset
    from personasim.dataset.publish import publish
    from personasim.dataset.spend import SpendLog
    from personasim.llm.keys import resolve_api_key
    from personasim.run_handle import new_run_id

    config = load_config(args.config)
    for endpoint in config.endpoints():
        if endpoint.role == "judge" and endpoint.model.provider == "openai":
            resolve_api_key(endpoint.connection, endpoint.model.model)
    dataset = finished_dataset(args.dataset)
    run_id = new_run_id("judge", datetime.now(timezone.utc))
    with dataset.lock():
        dataset.prepare()
        spend = SpendLog(dataset, run_id)
        try:
            summary = judge_dataset(dataset, config, run_id, args.max_concurrency, spend)
        finally:
            spend.close()
        stats, report = publish(dataset, config)
    judged = stats.get("judging") or {}
    console.print(f"judged {summary.scored} conversation(s) now, {summary.recovered} recovered, {summary.already} "
                  f"scored before; {len(summary.missing)} without an answer; {judged.get('scored', 0)} scored in "
                  f"all; report: {report}", highlight=False)
    for reason in summary.missing[:5]:
        console.print(f"  no scores: {reason}", highlight=False)
    return 0
