"""Unfilled template slots, told apart from content that only looks like one.

A conversation about code quotes `<div>`, `List<String>`, `{name}` and `$HOME`; a model that
echoes its prompt leaves `<revised message>`, `[insert topic]` or the template's own `$persona`.
Only the second is a defect. A slot-shaped token is content when the texts the reply may quote
(the query, the persona, the conversation so far) already hold it, or when it sits in code
(backticks, a fenced block). What is left is a slot when it is one of the prompt template's own
(`$persona`, `{persona}`, a `<rewritten message>` in its example) or a descriptive slot of several
plain words (`<your follow-up message>`, `{user name}`, `[insert the topic]`), which code and markup
never are, or a common slot name (`<message>`, `{query}`), or the whole reply.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

_TOKEN = re.compile(r"<[^<>\n]{1,40}>|\{[^{}\n]{1,40}\}|\$\{\w+\}|\$[A-Za-z_]\w*|\[[^\[\]\n]{1,40}\](?!\()")
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.S)
_WORDS = re.compile(r"^[A-Za-z][A-Za-z'-]*(?: [A-Za-z][A-Za-z'-]*){1,6}$")
_BRACKET_SLOT = re.compile(r"^\[(?:insert|your|enter|add|rewritten|revised|user'?s?|message|name|topic|placeholder)\b",
                           re.I)
# what templates call their slots: `<message>` or `{query}` names a slot, in no language's syntax
_SLOT_WORDS = {"message", "query", "question", "answer", "response", "reply", "text", "topic", "name", "persona",
               "content", "input", "output", "placeholder", "follow-up", "followup", "request"}
# HTML elements: `<a href>`-like words are markup, not a description
_MARKUP = {"a", "abbr", "b", "body", "br", "button", "code", "div", "em", "form", "h1", "h2", "h3", "head", "hr",
           "html", "i", "img", "input", "label", "li", "link", "meta", "ol", "option", "p", "pre", "script",
           "section", "select", "span", "strong", "style", "svg", "table", "td", "template", "th", "tr", "ul"}


class Slots:
    """The slots of one prompt template: `$name` placeholders (also written `${name}` or `{name}`)
    and the literal slot-shaped tokens its text shows the model (an example answer's `<strategy>`)."""

    def __init__(self, template: str) -> None:
        self.names = set(string.Template(template).get_identifiers())
        self.literals = {t for t in (m.group(0) for m in _TOKEN.finditer(template)) if not t.startswith("$")}

    def own(self, token: str) -> bool:
        return token in self.literals or _name(token) in self.names


def _name(token: str) -> str:
    """`$x`, `${x}`, `{x}` -> `x`; anything else -> ''."""
    match = re.fullmatch(r"\$\{?(\w+)\}?|\{(\w+)\}", token)
    return (match.group(1) or match.group(2)) if match else ""


def descriptive(token: str) -> bool:
    """A slot described in plain words: `<revised message>`, `{user name}`, `[insert the topic]`."""
    if token.startswith("["):
        return bool(_BRACKET_SLOT.match(token))
    inner = token[1:-1].strip()
    if token[0] not in "<{":
        return False
    return inner.lower() in _SLOT_WORDS or bool(_WORDS.match(inner)) and inner.split()[0].lower() not in _MARKUP


def unfilled_slot(text: str, template: str, context: Iterable[str] = ()) -> str | None:
    """The first unfilled slot of `template` left in `text`, or None. `context`: the texts the
    reply may quote (a token found in them is content, whatever its shape)."""
    quoted = "\n".join(context).lower()
    code = [m.span() for m in _CODE.finditer(text)]
    slots: Slots | None = None
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if any(start <= match.start() < end for start, end in code) or token.lower() in quoted:
            continue
        slots = slots or Slots(template)
        if slots.own(token) or descriptive(token) or token == text.strip():  # a reply that is only a slot
            return token
    return None


def outside_code(text: str) -> str:
    """`text` with its code (fenced blocks, inline spans) blanked out, offsets kept."""
    return _CODE.sub(lambda m: " " * len(m.group(0)), text)
