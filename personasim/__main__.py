"""`python -m personasim` is the `personasim` command."""

from personasim.cli import entry

entry()
