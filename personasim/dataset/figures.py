"""A figure's value as each place shows it: text, a small HTML table for a mapping, a markdown
cell, a rich renderable. Rows of figures keep their values as they are (a mapping stays a
mapping), and each renderer turns them into its own form: no Python repr reaches a reader."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

Row = tuple[str, Any]


def text(value: Any) -> str:
    """One line: a mapping as `key value, key value`, a number with thousands separators."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {text(v)}" for k, v in value.items()) or "none"
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def html(value: Any) -> str:
    """A cell's HTML: a mapping as a small table of its keys and values."""
    if isinstance(value, Mapping) and value:
        rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{html(v)}</td></tr>" for k, v in value.items())
        return f'<table class="mini">{rows}</table>'
    return escape(text(value))


def markdown(value: Any) -> str:
    """A markdown table cell: a mapping as `key: value` lines."""
    if isinstance(value, Mapping) and value:
        return "<br>".join(f"{k}: {markdown(v)}" for k, v in value.items())
    return text(value).replace("|", "\\|")


def rich(value: Any) -> Any:
    """A rich renderable: a mapping as a small table, anything else as text."""
    if isinstance(value, Mapping) and value:
        from rich.table import Table

        table = Table(show_header=False, box=None, pad_edge=False)
        for k, v in value.items():
            table.add_row(str(k), rich(v))
        return table
    return text(value)
