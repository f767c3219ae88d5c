"""What the roles' replies must be: the rules every free-text reply is checked by before it enters
an interaction. A check cleans what can be cleaned by rule (wrapping quotes, a role label, a
preamble: recorded as repaired violations) and names the first problem left; the repair loop
(personasim.llm.repair) asks again with the reason.
"""

from __future__ import annotations

import difflib
import re

from personasim.llm.repair import Checked

_LABEL = re.compile(r"^\s*\**\s*(user|person|persona|assistant|me|human|ai|customer|rewritten query|rewrite|"
                    r"revised query|query|follow[- ]?up|message|noisy text)\s*\**\s*:\s*", re.I)
_PREAMBLE = re.compile(r"^\s*(?:(?:sure|certainly|ok(?:ay)?|of course)[,!.]?\s*)?here(?:'s| is) (?:the |a |my |your )?"
                       r"(?:rewritten|revised|paraphrased|new|updated|rephrased)[^:\n]{0,60}:\s*", re.I)
_PLACEHOLDER = re.compile(r"<[^<>\n]{1,40}>|\{[a-z_ ]{1,30}\}|\$[a-z_]{2,}|\[(?:insert|your|rewritten|revised|"
                          r"user|message)[^\]\n]{0,40}\]", re.I)
_TRANSCRIPT = re.compile(r"\n\s*\**\s*(?:PERSON|ASSISTANT|USER|AI)\s*\**\s*:", re.I)
_QUOTES = ('"', "'", "“", "”", "`")


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


def clean(text: str, *, cut_transcript: bool = False) -> Checked:
    """Strip what a model wraps a reply in: a preamble, a role label, wrapping quotes, and (for a
    user turn) a transcript it went on writing."""
    checked = Checked(text.strip())
    if cut_transcript:
        match = _TRANSCRIPT.search(checked.text)
        if match:
            checked.text = checked.text[:match.start()].strip()
            checked.cleaned.append("transcript_continued")
    for pattern, name in ((_PREAMBLE, "preamble"), (_LABEL, "role_label")):
        stripped = pattern.sub("", checked.text, count=1)
        if stripped != checked.text:
            checked.text, checked.cleaned = stripped.strip(), [*checked.cleaned, name]
    if len(checked.text) >= 2 and checked.text[0] in _QUOTES and checked.text[-1] in _QUOTES:
        checked.text = checked.text[1:-1].strip()
        checked.cleaned.append("wrapping_quotes")
    return checked


def common_problems(checked: Checked, finish_reason: str | None, instructions: str) -> Checked:
    """Problems every free-text reply can have: cut at the limit, empty, a placeholder, the
    `instructions` (the prompt template's text) echoed."""
    if finish_reason == "length":
        checked.fail("truncated", "the reply was cut at max_tokens")
    if not checked.text:
        checked.fail("empty", "nothing is left after the clean-up")
    placeholder = _PLACEHOLDER.search(checked.text)
    if placeholder:
        checked.fail("placeholder", f"{placeholder.group(0)!r} left in the reply")
    echoed = next((line for line in instructions.splitlines() if len(line) > 24 and line in checked.text), None)
    if echoed or (len(checked.text.split()) >= 6 and normalise(checked.text) in normalise(instructions)):
        checked.fail("template_echo", f"the instructions are repeated: {(echoed or checked.text)[:40]!r}")
    return checked
