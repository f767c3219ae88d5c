"""The `personasim` command: run the flow, estimate a run's cost, validate inputs, print a dataset's
statistics, report on it in HTML, export it for PersonaGym or Hugging Face.

One module per command, each with `add` (its options) and its `main`s."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
from collections.abc import Callable

from rich.markup import escape

from personasim.cli import config, dataset, estimate, export, judge, personas, run, server
from personasim.cli.common import Parser, console
from personasim.cli.run import BUDGET_REACHED, RUN_DEFAULTS
from personasim.errors import PersonasimError
from personasim.interrupt import INTERRUPTED

__all__ = ["BUDGET_REACHED", "RUN_DEFAULTS", "entry", "main"]

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": run.main, "validate": estimate.main_validate, "estimate": estimate.main, "export": export.main,
    "compact": dataset.main_compact, "report": dataset.main_report, "config": config.main, "stats": dataset.main_stats,
    "personas": personas.main, "judge": judge.main, "server": server.main,
}


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="personasim", description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in (run, estimate, export, dataset, config, personas, judge, server):
        module.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
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
