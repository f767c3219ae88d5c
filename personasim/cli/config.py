"""`personasim config migrate`: a config of another layout as the personasim config of the same run."""

from __future__ import annotations

import argparse
from pathlib import Path

from personasim.cli.common import Commands, Parser, add_command


def add(sub: Commands) -> None:
    config = add_command(sub, "config", "work with config files")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=Parser)
    migrate = add_command(config_sub, "migrate", "print a PersonaGym config.yaml, or a personasim config of the "
                                                 "earlier layout, as the personasim config of the same run")
    migrate.add_argument("old", help="the PersonaGym config.yaml, or a personasim config of the earlier layout")
    migrate.add_argument("--to", default=None, help="write it to this file instead of printing it")


def main(args: argparse.Namespace) -> int:
    from personasim.config.personagym import migrate

    text = migrate(args.old)
    if args.to:
        Path(args.to).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0
