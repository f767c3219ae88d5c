"""The `personasim` command: run the flow, estimate a run's cost, validate inputs, print a dataset's
statistics, report on it in HTML, export it for PersonaGym or Hugging Face."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from personasim.errors import ConfigError, PersonasimError
from personasim.interrupt import INTERRUPTED

if TYPE_CHECKING:
    from personasim.config import PersonasimConfig
    from personasim.dataset import Dataset
    from personasim.embedded_api import EmbeddedAPI
    from personasim.flows.parameters import RunParameters
    from personasim.head_start import OpenRun
    from personasim.records import Pair

console = Console(soft_wrap=True)  # a message is one line, whatever the terminal's width
BUDGET_REACHED = 3  # the exit status of a run the budget stopped (a rerun resumes it)

# Offline by default: no telemetry, quiet logs; a user's own settings still win.
RUN_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # The embedded server logs tracebacks when it is stopped mid-flush at the end of a run.
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    # A local Dask cluster logs every worker's start and stop at INFO.
    "DASK_LOGGING__DISTRIBUTED": "warning",
    # The embedded API's start-up can take longer than Prefect's 20 s on a loaded machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    # Arrow's default allocator (mimalloc) keeps what a table read freed: compaction, statistics and
    # exports read every table once, and a 10k-pair run ended 80 MB larger than with the system's.
    "ARROW_DEFAULT_MEMORY_POOL": "system",
}


def _positive(kind: type) -> Any:
    """An argparse type: a number greater than 0 (`--limit 0` is refused before anything starts)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _ratio(text: str) -> float:
    """An argparse type: a share from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """A bad option is one line naming it (exit 2), not the usage block."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _inputs(command: argparse.ArgumentParser) -> None:
    command.add_argument("--input", required=True, help="pair file (JSONL, JSON, CSV, Parquet) or a directory")
    command.add_argument("--config", default=None, help="YAML config (default: the offline backend)")


def _parser() -> argparse.ArgumentParser:
    helpful = _Help
    parser = _Parser(prog="personasim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", formatter_class=helpful,
                         help="generate interactions into a dataset (the Prefect flow, locally)")
    _inputs(run)
    run.add_argument("--output", default="output/dataset", help="dataset root: a directory or an s3:// URL")
    run.add_argument("--backend", choices=("config", "local"), default="config",
                     help="'local': every role on a llama.cpp model started for this run")
    run.add_argument("--local-model", default="smollm2", help="with --backend local: 'smollm2' or a GGUF path")
    run.add_argument("--run-name", default=None, help="a name for the run id (letters, digits, _ . -)")
    run.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    run.add_argument("--max-concurrency", type=_positive(int), default=16, help="LLM calls in flight per endpoint")
    run.add_argument("--limit", type=_positive(int), default=None, help="only the first N pairs of the input")
    run.add_argument("--max-cost", type=_positive(float), default=None,
                     help="USD: once the run has spent it, no new pair starts (needs prices for every model)")
    run.add_argument("--max-failure-ratio", type=_ratio, default=None, metavar="RATIO",
                     help="exit 1 (the flow run: Failed) when more than this share of pairs failed; "
                          "default: only when none succeeded")
    run.add_argument("--new-variant", action="store_true",
                     help="add the run to a dataset made with another seed or config, counted apart")
    run.add_argument("--pairs-per-task", type=_positive(int), default=None,
                     help="pairs per Prefect task run (default: chosen from the pairs and the concurrency)")
    run.add_argument("--wave-size", type=_positive(int), default=None,
                     help="pairs per committed Parquet wave (default: twice the concurrency)")
    run.add_argument("--task-runner", choices=("thread", "dask", "ray"), default="thread",
                     help="where pair tasks run: threads here, or Dask/Ray worker processes")
    run.add_argument("--runner-address", default=None,
                     help="an existing Dask scheduler or Ray cluster (default: a local one)")
    run.add_argument("--workers", type=_positive(int), default=None,
                     help="worker processes of a local Dask/Ray cluster (default: one per core)")
    run.add_argument("--summary-json", default=None, help="also write the run's summary to this file")
    validate = sub.add_parser("validate", formatter_class=helpful,
                              help="check the input, the config and the API keys, print the first problem")
    _inputs(validate)
    estimate = sub.add_parser("estimate", formatter_class=helpful,
                              help="projected calls, tokens and cost of a run, before anything is paid")
    _inputs(estimate)
    estimate.add_argument("--output", default=None,
                          help="the run's dataset: what it holds is skipped, and calibrates the figures")
    estimate.add_argument("--limit", type=_positive(int), default=None, help="only the first N pairs of the input")
    estimate.add_argument("--json", action="store_true", help="print the estimate as JSON")
    export = sub.add_parser("export", formatter_class=helpful, help="write a dataset in another tool's format")
    export.add_argument("dataset", help="dataset root")
    export.add_argument("--format", choices=("personagym", "hf"), required=True,
                        help="personagym: train/val/test_samples.json and statistics.json; "
                             "hf: a Hugging Face dataset folder (Parquet splits and a README.md dataset card)")
    export.add_argument("--to", required=True, help="the folder to write into")
    export.add_argument("--config", default=None,
                        help="personagym: the config whose export section (include_*) applies")
    export.add_argument("--push-to-hub", metavar="REPO", default=None,
                        help="hf: also upload the folder to this Hub dataset repo (token: HF_TOKEN in the environment)")
    export.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    compact = sub.add_parser("compact", formatter_class=helpful,
                             help="merge each partition's small wave files into a few (every run does it too)")
    compact.add_argument("dataset", help="dataset root")
    report = sub.add_parser("report", formatter_class=helpful,
                            help="one self-contained HTML file: summary, plots and a conversation browser")
    report.add_argument("dataset", help="dataset root")
    report.add_argument("--to", default=None, help="the HTML file to write (default: report.html in the dataset)")
    report.add_argument("--max-conversations", type=_positive(int), default=2000,
                        help="conversations in the browser (a fixed sample when the dataset holds more)")
    config = sub.add_parser("config", formatter_class=helpful, help="work with config files")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    migrate = config_sub.add_parser("migrate", formatter_class=helpful,
                                    help="print a PersonaGym config.yaml as the personasim config of the same run")
    migrate.add_argument("old", help="the PersonaGym config.yaml")
    migrate.add_argument("--to", default=None, help="write it to this file instead of printing it")
    stats = sub.add_parser("stats", formatter_class=helpful, help="print a dataset's statistics summary")
    stats.add_argument("dataset", help="dataset root")
    stats.add_argument("--json", action="store_true", help="print stats.json as JSON")
    return parser


def _validate(args: argparse.Namespace) -> tuple[PersonasimConfig, list[Pair]]:
    """Config, input and API keys, checked in well under a second: no Prefect, no server, no call."""
    from personasim.config import load_config, with_local_model
    from personasim.inputs import load_input
    from personasim.llm.keys import check_keys

    config = load_config(args.config)
    if getattr(args, "seed", None) is not None:
        config = config.with_seed(args.seed)
    if getattr(args, "backend", "config") == "local":
        config = with_local_model(config, args.local_model)
    check_keys(config)
    return config, load_input(args.input, limit=getattr(args, "limit", None))


def _print_stats(root: str, stats: dict[str, Any]) -> None:
    from personasim.dataset.stats import count_rows

    table = Table(title=f"dataset {root}", show_header=False)
    for name, value in count_rows(stats):
        table.add_row(name, value)
    console.print(table)
    console.print(quality_table(stats["quality"]))


def quality_table(quality: dict[str, Any]) -> Table:
    """The quality section as a table: one row per figure."""
    from personasim.dataset.quality import summary_rows

    table = Table(title="quality", show_header=False)
    for name, value in summary_rows(quality):
        table.add_row(name, value)
    return table



def _preflight(args: argparse.Namespace, config: PersonasimConfig) -> None:
    """What else can be checked before Prefect starts: the output, the dataset's seed and config,
    the runner's extra, prices for a budget."""
    from personasim.dataset import Dataset
    from personasim.dataset.identity import check_variant

    dataset = Dataset(args.output)
    dataset.check_writable()
    check_variant(dataset, config.fingerprint(), config.seed, new_variant=args.new_variant)
    if args.task_runner != "thread":
        from personasim.flows.runners import runner_class

        runner_class(args.task_runner)
    elif args.runner_address or args.workers:
        raise ConfigError("--runner-address and --workers are for --task-runner dask or ray")
    unpriced = sorted({m.model for _, m in config.spec.models.all()} - set(config.pricing))
    if (args.max_cost or config.budget.max_cost_usd) and unpriced:
        raise ConfigError(f"a budget needs a price for every model; the config's pricing has none for {unpriced[0]}")


def _parameters(args: argparse.Namespace) -> RunParameters:
    """The flow's parameters from the command's options; a value the flow would refuse names its option."""
    from pydantic import ValidationError

    from personasim.flows.parameters import RunParameters

    options = {name: getattr(args, name) for name in RunParameters.model_fields if hasattr(args, name)}
    options.update(input_path=args.input, dataset_root=args.output, config_path=args.config)
    try:
        return RunParameters(**options)
    except ValidationError as exc:
        error = exc.errors()[0]
        option = "--" + str(error["loc"][0]).replace("_", "-") if error["loc"] else "options"
        raise ConfigError(f"{option}: {error['msg']}") from None


def _flow(args: argparse.Namespace, params: RunParameters, config: PersonasimConfig, pairs: int,
          api: EmbeddedAPI | None) -> Any:
    """Run the flow in this process, on the embedded API once it answers; its final state."""
    provider = "local" if args.backend == "local" else config.spec.models.assistant[0].provider
    console.print(f"[bold]personasim[/]: {pairs} pairs from {args.input}, provider {provider}; "
                  "starting the flow…")
    from personasim.dataset import quality
    from personasim.flows.generate import generate_interactions
    from personasim.tasks.prefect_compat import on_embedded_api

    if api is not None:  # on a running server, the flow preloads once its calls are in flight
        quality.preload()  # what the statistics at the end need, imported while the embedded API boots
        api.wait_ready(float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
    with on_embedded_api(api.url if api is not None else None):
        return generate_interactions(**params.model_dump(), return_state=True)


def _run(args: argparse.Namespace) -> int:
    for name, value in RUN_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from personasim import embedded_api, watchdog

    watchdog.start()  # the run's child processes (Prefect's API, a local model or cluster) end with it
    api = embedded_api.start_unless_configured()  # boots while the engine is imported and the inputs checked
    from personasim import head_start  # the engine, pyarrow, openai: a second and more, so after the spawn
    opened: OpenRun | None = None
    try:
        config, pairs = _validate(args)
        _preflight(args, config)
        params = _parameters(args)
        opened = head_start.begin(params, pairs)  # pairs in flight while Prefect is imported and its API boots
    except BaseException:
        if api is not None:
            api.stop()
        raise
    try:
        state = _flow(args, params, config, len(pairs), api)
    except KeyboardInterrupt:
        if opened is None or opened.owner != "command":
            raise
        stored = head_start.abandon(opened)
        console.print(f"interrupted before the flow started: {stored} pairs done and stored (the next run writes "
                      "them without a call), the rest not done; run the same command again to resume", highlight=False)
        return INTERRUPTED
    finally:
        if opened is not None:  # a flow that failed before claiming it: pairs done stay stored
            head_start.abandon(opened)
    from personasim.flows.outcome import RunEnded, RunFailed

    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException) and not isinstance(result, RunEnded):
        raise result  # the run did not start: a one-line error below
    summary = cast(dict[str, Any], result.summary if isinstance(result, RunEnded) else result)
    if args.summary_json:
        with open(args.summary_json, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2, default=str)
    if summary["stopped"] == "interrupted":
        console.print(f"interrupted: {summary['done']} pairs done and committed, {summary['not_started']} not "
                      "done; run the same command again to resume", highlight=False)
        return INTERRUPTED
    console.print(f"run {summary['run_id']}: {summary['done']} done, {summary['failed']} failed, "
                  f"{summary['skipped']} skipped, {summary['recovered']} recovered")
    _print_stats(args.output, summary["statistics"])
    console.print(f"dataset written to [bold]{os.path.abspath(args.output)}[/]; report: {summary['report']}")
    if summary["stopped"] == "budget":
        budget = args.max_cost or config.budget.max_cost_usd
        console.print(f"stopped by the budget: ${summary['cost_usd']} spent of ${budget}; "
                      f"{summary['not_started']} pairs not started (run again to resume)", highlight=False)
        return BUDGET_REACHED
    if isinstance(result, RunFailed):
        console.print(f"[red]failed:[/] {escape(str(result))}", highlight=False)
        return 1
    return 0


def _estimate(args: argparse.Namespace) -> int:
    from personasim.estimate import estimate_run

    config, pairs = _validate(args)
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


def _dataset(root: str) -> Dataset:
    """A dataset a run has finished (its stats.json exists), or the one-line error saying why not."""
    from personasim.dataset import Dataset

    dataset = Dataset(root)
    if dataset.read_json("stats.json") is None:
        raise PersonasimError(f"{root}: no stats.json (not a personasim dataset, or no run finished)")
    return dataset


def _export(args: argparse.Namespace) -> int:
    if args.format == "personagym" and (args.push_to_hub or args.private):
        raise ConfigError("--push-to-hub and --private are for --format hf")
    if args.push_to_hub and not os.environ.get("HF_TOKEN"):  # before anything is written
        raise ConfigError("--push-to-hub needs a Hugging Face token in the HF_TOKEN environment variable")
    dataset = _dataset(args.dataset)
    if args.format == "hf":
        from personasim.exports.huggingface import export_hf, push_to_hub

        files = export_hf(dataset, args.to)
        console.print(f"wrote {len(files)} files to {args.to} (load with datasets.load_dataset({args.to!r}))",
                      highlight=False)
        if args.push_to_hub:
            console.print(f"pushed to {push_to_hub(args.to, args.push_to_hub, private=args.private)}",
                          highlight=False)
        return 0
    from personasim.config import load_config
    from personasim.exports.personagym import export_personagym

    files = export_personagym(dataset, args.to, load_config(args.config).export)
    console.print(f"wrote {', '.join(f.name for f in files)} to {args.to}", highlight=False)
    return 0


def _report(args: argparse.Namespace) -> int:
    from personasim.report import write_report

    path, seconds = write_report(_dataset(args.dataset), args.to, args.max_conversations)
    console.print(f"report written to [bold]{path}[/] in {seconds:.1f} s (open it in a browser; it needs no network)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "estimate":
            return _estimate(args)
        if args.command == "export":
            return _export(args)
        if args.command == "config":
            from personasim.config.personagym import migrate

            text = migrate(args.old)
            if args.to:
                Path(args.to).write_text(text, encoding="utf-8")
            else:
                print(text, end="")
            return 0
        if args.command == "validate":
            config, pairs = _validate(args)
            console.print(f"ok: {len(pairs)} pairs from {args.input}; config fingerprint {config.fingerprint()}")
            return 0
        if args.command == "report":
            return _report(args)
        if args.command == "compact":
            dataset = _dataset(args.dataset)
            with dataset.lock():
                dataset.prepare()
                console.print(dataset.compact().line(), highlight=False)
            return 0
        stats = _dataset(args.dataset).read_json("stats.json")
        if args.json:
            print(json.dumps(stats, indent=2))
        else:
            _print_stats(args.dataset, stats)
        return 0
    except PersonasimError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:  # before the run had started: nothing to commit
        console.print("interrupted", highlight=False)
        return INTERRUPTED
    except BrokenPipeError:  # `personasim stats DIR --json | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def entry() -> None:
    """The `personasim` command: main(), then an exit that skips the interpreter's teardown.

    A run leaves hundreds of modules and millions of objects behind; tearing them down took half a
    second after the work was done and the dataset written. Threads are joined and exit handlers
    (Prefect's flushes, the embedded API's stop) run as usual first: this handler, registered
    first, runs last.
    """
    status = [1]  # an exception out of main: Python prints it, the command exits 1
    atexit.register(_exit_now, status)
    status[0] = main()
    sys.exit(status[0])


def _exit_now(status: list[int]) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(status[0])


if __name__ == "__main__":
    entry()
