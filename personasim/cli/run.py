"""`personasim run`: the flow, locally, with everything checkable checked before Prefect starts."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any, cast

from rich.markup import escape

from personasim.cli.common import Commands, add_command, add_inputs, console, positive, ratio, validate
from personasim.cli.dataset import print_stats
from personasim.errors import ConfigError
from personasim.interrupt import GRACE_S, INTERRUPTED

if TYPE_CHECKING:
    from personasim.config import PersonasimConfig
    from personasim.embedded_api import EmbeddedAPI
    from personasim.flows.parameters import RunParameters
    from personasim.head_start import OpenRun

BUDGET_REACHED = 3  # the exit status of a run the budget stopped (a rerun resumes it)

# Offline by default: no telemetry, quiet logs; a user's own settings still win.
RUN_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    # the run's own log lines (start, waves, summary, failed pairs) go to the API, so a server's UI
    # shows them; the terminal only gets warnings
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
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


def add(sub: Commands) -> None:
    run = add_command(sub, "run", "generate interactions into a dataset (the Prefect flow, locally): from "
                                  "ready pairs (--input), or from personas and a query pool (--personas, --queries)")
    add_inputs(run)
    run.add_argument("--output", default="output/dataset", help="dataset root: a directory or an s3:// URL")
    run.add_argument("--backend", choices=("config", "local"), default="config",
                     help="'local': every role on a llama.cpp model started for this run")
    run.add_argument("--local-model", default="smollm2", help="with --backend local: 'smollm2' or a GGUF path")
    run.add_argument("--run-name", default=None, help="a name for the run id (letters, digits, _ . -)")
    run.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    run.add_argument("--max-concurrency", type=positive(int), default=16, help="LLM calls in flight per endpoint")
    run.add_argument("--limit", type=positive(int), default=None, help="only the first N pairs of the input")
    run.add_argument("--max-cost", type=positive(float), default=None,
                     help="USD: once the run has spent it, no new pair starts (needs prices for every model)")
    run.add_argument("--max-failure-ratio", type=ratio, default=None, metavar="RATIO",
                     help="exit 1 (the flow run: Failed) when more than this share of pairs failed; "
                          "default: only when none succeeded")
    run.add_argument("--new-variant", action="store_true",
                     help="add the run to a dataset made with another seed or config, counted apart")
    run.add_argument("--pairs-per-task", type=positive(int), default=None,
                     help="pairs per Prefect task run (default: chosen from the pairs and the concurrency)")
    run.add_argument("--wave-size", type=positive(int), default=None,
                     help="pairs per committed Parquet wave (default: twice the concurrency)")
    run.add_argument("--task-runner", choices=("thread", "dask", "ray"), default="thread",
                     help="where pair tasks run: threads here, or Dask/Ray worker processes")
    run.add_argument("--runner-address", default=None,
                     help="an existing Dask scheduler or Ray cluster (default: a local one)")
    run.add_argument("--workers", type=positive(int), default=None,
                     help="worker processes of a local Dask/Ray cluster (default: one per core)")
    run.add_argument("--mode", choices=("online", "batch"), default=None,
                     help="batch: each round of calls through the endpoints' batch APIs (half the price; a round "
                          "can take up to a day; run again to pick batches up); default: the config's, else online")
    run.add_argument("--summary-json", default=None, help="also write the run's summary to this file")


def _preflight(args: argparse.Namespace, config: PersonasimConfig, params: RunParameters) -> None:
    """What else can be checked before Prefect starts: the output, the dataset's seed and config,
    the runner's extra, a local folder for a batch run's journal, prices for a budget."""
    from personasim.batch.journal import journal_path
    from personasim.dataset import Dataset
    from personasim.dataset.identity import check_variant

    dataset = Dataset(args.output)
    if params.batch_run(config):
        journal_path(dataset, "--output")  # before anything touches the output
    dataset.check_writable()
    check_variant(dataset, config.fingerprint(), config.seed, new_variant=args.new_variant)
    if args.task_runner != "thread":
        from personasim.flows.runners import runner_class

        runner_class(args.task_runner)
    elif args.runner_address or args.workers:
        raise ConfigError("--runner-address and --workers are for --task-runner dask or ray")
    models = {m.model for _, m in config.spec.models.all()}
    if args.input is None and config.formulation.enabled:
        models.add(config.formulator.model)
    unpriced = sorted(models - set(config.pricing))
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


def _watched(server: str | None) -> Any:
    """While the run uses the local server: if it dies, the run stops and the command ends at once
    with the line saying so (what was done is stored; the same command resumes)."""
    if server is None:
        return contextlib.nullcontext()
    from personasim import prefect_server

    def noticed() -> None:
        console.print(f"the local Prefect server at {server} stopped answering mid-run: stopping (pairs in flight "
                      f"get {GRACE_S:.0f} s, every pair done is stored)", highlight=False)

    def lost() -> None:
        console.print("stopped: run the same command again to resume (the pairs done are written without a call)",
                      highlight=False)
        sys.stdout.flush()
        os._exit(INTERRUPTED)  # Prefect's client would wait on the dead API at exit

    return prefect_server.Watch(server, noticed, lost)


def _flow(args: argparse.Namespace, params: RunParameters, config: PersonasimConfig, what: str,
          api: EmbeddedAPI | None, server: str | None) -> Any:
    """Run the flow in this process, on the embedded API once it answers (or the local server); its
    final state."""
    provider = "local" if args.backend == "local" else config.spec.models.assistant[0].provider
    where = f" on the local Prefect server {server}" if server else ""
    console.print(f"[bold]personasim[/]: {escape(what)}, provider {provider}; starting the flow{where}…",
                  highlight=False)
    from personasim.dataset import quality
    from personasim.flows.generate import generate_interactions
    from personasim.tasks.prefect_compat import command_line_flow

    if api is not None:  # on a running server, the flow preloads once its calls are in flight
        quality.preload()  # what the statistics at the end need, imported while the embedded API boots
        api.wait_ready(float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
    with command_line_flow(api.url if api is not None else None):
        return generate_interactions(**params.model_dump(), return_state=True)


def main(args: argparse.Namespace) -> int:
    for name, value in RUN_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from personasim import embedded_api, prefect_server, watchdog

    watchdog.start()  # the run's child processes (Prefect's API, a local model or cluster) end with it
    server = None if embedded_api.configured() else prefect_server.running()
    if server is not None:  # the local server that stays: the run, its logs and artifacts are kept in its UI
        os.environ["PREFECT_API_URL"] = f"{server}/api"
    api = embedded_api.start_unless_configured()  # boots while the engine is imported and the inputs checked
    from personasim import head_start  # the engine, pyarrow, openai: a second and more, so after the spawn
    opened: OpenRun | None = None
    try:
        config, pairs, source = validate(args)
        params = _parameters(args)
        _preflight(args, config, params)
        opened = head_start.begin(params, pairs)  # pairs in flight while Prefect is imported and its API boots
    except BaseException:
        if api is not None:
            api.stop()
        raise
    try:
        with _watched(server):
            state = _flow(args, params, config, f"{len(pairs)} pairs from {args.input}" if source is None
                          else source.describe(), api, server)
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
    if server is not None:
        link = prefect_server.flow_run_link(server, state.state_details.flow_run_id)
        console.print(f"the run in Prefect's UI: {link}", highlight=False)
    return _report(args, config, state)


def _report(args: argparse.Namespace, config: PersonasimConfig, state: Any) -> int:
    """The run's outcome on the terminal, and its exit status."""
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
    print_stats(args.output, summary["statistics"])
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
