"""What every command shares: the console, option types, the parser that errs in one line, and
the checks of a config with its inputs (no Prefect, no server, no call)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from personasim.config import PersonasimConfig
    from personasim.dataset import Dataset
    from personasim.personas.source import PersonaSource
    from personasim.records import Pair

console = Console(soft_wrap=True)  # a message is one line, whatever the terminal's width


def positive(kind: type) -> Any:
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


def ratio(text: str) -> float:
    """An argparse type: a share from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


class Parser(argparse.ArgumentParser):
    """A bad option is one line naming it (exit 2), not the usage block."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message}\n")


class Help(argparse.HelpFormatter):
    """Every option's help ends with its default, where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


Commands = Any  # argparse's subparsers action (its class is private)


def add_command(sub: Commands, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, formatter_class=Help, help=help_text)
    return parser


def add_inputs(command: argparse.ArgumentParser) -> None:
    command.add_argument("--input", default=None, help="pair file (JSONL, JSON, CSV, Parquet) or a directory")
    command.add_argument("--config", default=None, help="YAML config (default: the offline backend)")
    personas = command.add_argument_group("pairs made from personas and a query pool (instead of --input)")
    add_persona_options(personas)
    personas.add_argument("--queries", default=None, help="the query pool: JSONL, JSON, CSV or Parquet, or a folder")
    personas.add_argument("--queries-per-persona", type=positive(int), default=None,
                          help="queries given to each persona (default: the config's, else 5)")


def add_persona_options(group: Any) -> None:
    group.add_argument("--personas", default=None, metavar="N|FILE",
                       help="sample N personas from the persona bank, or use the personas of a file")
    group.add_argument("--persona-bank", default=None, help="a persona bank YAML (default: the config's, else "
                                                            "personasim's own)")


def validate(args: argparse.Namespace) -> tuple[PersonasimConfig, list[Pair], PersonaSource | None]:
    """Config, input (or the personas' bank, settings and query pool) and API keys, checked in a
    moment: no Prefect, no server, no call. Pairs made from personas are planned by the flow."""
    from personasim.config import load_config, with_local_model
    from personasim.inputs import load_input
    from personasim.llm.keys import check_keys, resolve_api_key

    config = load_config(args.config)
    if getattr(args, "seed", None) is not None:
        config = config.with_seed(args.seed)
    if getattr(args, "backend", "config") == "local":
        config = with_local_model(config, args.local_model)
    check_keys(config)
    source = persona_source(args, config)
    if source is None:
        return config, load_input(args.input, limit=getattr(args, "limit", None)), None
    source.check(config.seed)
    formulator = config.formulator_endpoint()
    if config.formulation.enabled and formulator.model.provider == "openai":
        resolve_api_key(formulator.connection, formulator.model.model)
    return config, [], source


def persona_source(args: argparse.Namespace, config: PersonasimConfig) -> PersonaSource | None:
    """The personas and query pool the options and the config give; None for ready pairs (--input)."""
    from pydantic import ValidationError

    from personasim.errors import ConfigError
    from personasim.flows.parameters import RunParameters

    options = {"input_path": args.input, **{k: getattr(args, k) for k in ("personas", "queries",
                                                                         "queries_per_persona", "persona_bank")}}
    try:
        params = RunParameters(**options)
    except ValidationError as exc:
        raise ConfigError(f"--input: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    return params.persona_source(config)


def finished_dataset(root: str) -> Dataset:
    """A dataset a run has finished (its stats.json exists), or the one-line error saying why not."""
    from personasim.dataset import Dataset
    from personasim.errors import PersonasimError

    dataset = Dataset(root)
    if dataset.read_json("stats.json") is None:
        raise PersonasimError(f"{root}: no stats.json (not a personasim dataset, or no run finished)")
    return dataset
