"""`personasim server start|stop|status`: one local Prefect server and its UI, kept between runs
(`personasim run` uses it when it answers; see personasim.prefect_server)."""

from __future__ import annotations

import argparse

from personasim.cli.common import Commands, Parser, add_command, console, positive


def add(sub: Commands) -> None:
    server = add_command(sub, "server", "keep a local Prefect server and its UI between runs")
    actions = server.add_subparsers(dest="server_command", required=True, parser_class=Parser)
    start = add_command(actions, "start", "start the local server in the background (its database in PREFECT_HOME)")
    start.add_argument("--port", type=positive(int), default=4200, help="the port of its API and UI")
    add_command(actions, "stop", "stop the local server personasim started")
    add_command(actions, "status", "print the local server's URL, or that none answers")


def main(args: argparse.Namespace) -> int:
    from personasim import prefect_server

    if args.server_command == "start":
        url = prefect_server.start(args.port)
        console.print(f"local Prefect server at [bold]{url}[/] (UI: {url}; `personasim run` uses it); "
                      "`personasim server stop` ends it", highlight=False)
        return 0
    if args.server_command == "stop":
        stopped = prefect_server.stop()
        console.print("stopped the local Prefect server" if stopped else "no local server personasim started",
                      highlight=False)
        return 0
    answering = prefect_server.running()
    console.print(f"running at {answering}" if answering else
                  "no local Prefect server answers (runs boot their own API; `personasim server start` keeps one)",
                  highlight=False)
    return 0 if answering else 1
