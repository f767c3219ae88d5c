"""Prompt templates, one file per role operation beside this module, rendered in one place.

Templates use `$name` placeholders (string.Template), so JSON examples in them need no escaping;
a placeholder without a value is an error, never a silent blank.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from functools import cache
from importlib import resources

TEMPLATES = ("rewrite_query", "respond", "follow_up", "follow_up.may_stop", "follow_up.must_go_on",
             "extract_intent", "semantic_rewrite", "paraphrase", "repair", "formulate_system_prompt",
             "system_prompt.fallback", "judge.turn", "judge.rewrite", "judge.conversation",
             *(f"judge.axis.{axis}" for axis in ("persona_adherence", "naturalness", "stop_timing", "personalization",
                                                 "helpfulness", "coherence")))


@cache
def template(name: str) -> string.Template:
    if name not in TEMPLATES:
        raise KeyError(f"no prompt template {name!r}; known: {', '.join(TEMPLATES)}")
    text = resources.files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return string.Template(text.rstrip("\n"))


def render(name: str, **values: str) -> str:
    """The template `name` with its placeholders filled; KeyError names a missing one."""
    return template(name).substitute(values)


# the templates a config may replace with its own file
OVERRIDABLE = ("rewrite_query", "follow_up", "formulate_system_prompt")
# placeholders a replacement may still use that the package's template no longer does: the stop
# rule now follows the transcript (the part of the prompt that changes comes last, for prompt caches)
LEGACY = {"follow_up": {"stop_rule"}}


def check_override(name: str, text: str) -> str:
    """A replacement template's text, checked: a template that may be replaced, and only the
    placeholders the package's own takes (`$persona`; `{persona}` is read as `$persona` too)."""
    if name not in OVERRIDABLE:
        raise ValueError(f"prompt {name!r} cannot be replaced; these can: {', '.join(OVERRIDABLE)}")
    known = set(template(name).get_identifiers()) | LEGACY.get(name, set())
    braced = set(re.findall(r"(?<!\$)\{(\w+)\}", text))
    text = re.sub(r"(?<!\$)\{(\w+)\}", r"${\1}", text)
    unknown = sorted((braced | set(string.Template(text).get_identifiers())) - known)
    if unknown:
        raise ValueError(f"prompt {name!r} has a placeholder ${unknown[0]} that personasim does not fill "
                         f"(it fills: {', '.join(sorted(known)) or 'none'})")
    return text


class Prompts:
    """A run's templates: the package's, with the config's replacements."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self.overrides = dict(overrides or {})

    def text(self, name: str) -> str:
        return self.overrides.get(name) or template(name).template

    def render(self, name: str, **values: str) -> str:
        if name in self.overrides:
            return string.Template(self.overrides[name]).substitute(values)
        return render(name, **values)
