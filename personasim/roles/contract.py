"""What the roles' replies must be: the rules every free-text reply is checked by before it enters
an interaction. A check cleans what can be cleaned by rule (wrapping quotes, a role label, a
preamble: recorded as repaired violations) and names the first problem left; the repair loop
(personasim.llm.repair) asks again with the reason.

Every rule takes the `context` a reply may quote (the query, the persona, the conversation so far)
and leaves code alone, so a conversation about `<div>`, `List<String>` or `$HOME` is content, not
a defect (see personasim.roles.slots).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from personasim.llm.repair import Checked
from personasim.roles.slots import outside_code, unfilled_slot

_LABEL = re.compile(r"^\s*\**\s*(user|person|persona|assistant|me|human|ai|customer|rewritten query|rewrite|"
                    r"revised query|query|follow[- ]?up|message|noisy text|system prompt|system)\s*\**\s*:\s*", re.I)
_PREAMBLE = re.compile(r"^\s*(?:(?:sure|certainly|ok(?:ay)?|of course)[,!.]?\s*)?here(?:'s| is) (?:the |a |my |your )?"
                       r"(?:rewritten|revised|paraphrased|new|updated|rephrased|system)[^:\n]{0,60}:\s*", re.I)
# a transcript's next speaker: capitalised as a label (a YAML `user:` key in a code block is not one)
_TRANSCRIPT = re.compile(r"\n\s*\**\s*(?:PERSON|ASSISTANT|USER|AI|Person|Assistant|User)\s*\**\s*:")
_QUOTES = ('"', "'", "“", "”")


def normalise(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def kept(value: str, text: str) -> bool:
    """Whether a slot value survives in `text`: most of its words there, typos allowed."""
    words = normalise(value).split()
    if not words:
        return True
    present = normalise(text).split()
    found = sum(1 for w in words if w in present or difflib.get_close_matches(w, present, n=1, cutoff=0.75))
    return found / len(words) >= 0.5


def similarity(a: str, b: str) -> float:
    """0..1: how alike two texts are, word for word (case and punctuation aside)."""
    return difflib.SequenceMatcher(None, normalise(a).split(), normalise(b).split(), autojunk=False).ratio()


def clean(text: str, *, cut_transcript: bool = False, context: Sequence[str] = ()) -> Checked:
    """Strip what a model wraps a reply in: a preamble, a role label, wrapping quotes, and (for a
    user turn) a transcript it went on writing. A label the `context` starts with too (a query
    that begins "Query: SELECT …") is the text's own."""
    checked = Checked(text.strip())
    if cut_transcript:
        match = _TRANSCRIPT.search(outside_code(checked.text))
        if match:
            checked.text = checked.text[:match.start()].strip()
            checked.cleaned.append("transcript_continued")
    for pattern, name in ((_PREAMBLE, "preamble"), (_LABEL, "role_label")):
        match = pattern.match(checked.text)
        if match is None or any(c.strip().lower().startswith(match.group(0).strip().lower()) for c in context):
            continue
        checked.text, checked.cleaned = checked.text[match.end():].strip(), [*checked.cleaned, name]
    if len(checked.text) >= 2 and checked.text[0] in _QUOTES and checked.text[-1] in _QUOTES:
        checked.text = checked.text[1:-1].strip()
        checked.cleaned.append("wrapping_quotes")
    return checked


def common_problems(checked: Checked, finish_reason: str | None, instructions: str,
                    context: Sequence[str] = ()) -> Checked:
    """Problems every free-text reply can have: cut at the limit, empty, an unfilled slot of the
    prompt template, the `instructions` (the template's text) echoed. What the `context` holds
    is never a problem: the reply may quote it."""
    if finish_reason == "length":
        checked.fail("truncated", "the reply was cut at max_tokens")
    if not checked.text:
        checked.fail("empty", "nothing is left after the clean-up")
    slot = unfilled_slot(checked.text, instructions, context)
    if slot:
        checked.fail("placeholder", f"{slot!r} left in the reply")
    echoed = next((line for line in instructions.splitlines()
                   if len(line) > 24 and line in checked.text and not any(line in c for c in context)), None)
    if echoed or (len(checked.text.split()) >= 6 and normalise(checked.text) in normalise(instructions)):
        checked.fail("template_echo", f"the instructions are repeated: {(echoed or checked.text)[:40]!r}")
    return checked
