"""Prompt templates, one file per role operation beside this module, rendered in one place.

Templates use `$name` placeholders (string.Template), so JSON examples in them need no escaping;
a placeholder without a value is an error, never a silent blank.
"""

from __future__ import annotations

import string
from functools import cache
from importlib import resources

TEMPLATES = ("rewrite_query", "respond", "follow_up", "follow_up.may_stop", "follow_up.must_go_on",
             "extract_intent", "semantic_rewrite", "paraphrase", "repair")


@cache
def template(name: str) -> string.Template:
    if name not in TEMPLATES:
        raise KeyError(f"no prompt template {name!r}; known: {', '.join(TEMPLATES)}")
    text = resources.files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return string.Template(text.rstrip("\n"))


def render(name: str, **values: str) -> str:
    """The template `name` with its placeholders filled; KeyError names a missing one."""
    return template(name).substitute(values)
