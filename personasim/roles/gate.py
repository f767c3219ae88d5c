"""The gate a user turn and a rewrite pass before they are kept: cheap rules first (no assistant
phrasing, no offer of help, no talk of the simulation, the persona's language; a rewrite stays a
request), then, with a judge configured, the judge's in-character check. A rule never fires on
what the conversation, the query or the persona already say, nor inside code.

Every draft's outcome is a `Verdict`, kept on the message; a failing draft is asked for again
with the reason (the role's repair loop), then handled as a broken contract.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from personasim.config.spec import GateConfig
from personasim.judgement import Outcome, Verdict
from personasim.llm.ledger import Ledger
from personasim.llm.repair import Checked
from personasim.roles.judge import Judge
from personasim.roles.slots import outside_code

_ASSISTANT_LIKE = re.compile(
    r"^\W*(?:certainly|of course|absolutely|sure thing)\b[!,.]|\bi(?:'d| would) be (?:happy|glad) to\b|"
    r"\bhere(?:'s| is) (?:a|an|the|your) (?:step-by-step|breakdown|summary|quick (?:guide|overview)|list of)\b|"
    r"\bgreat question\b|\bhope (?:this|that) helps\b|\blet me know if you (?:have|need)\b", re.I)
_OFFERS_HELP = re.compile(
    r"\bhow (?:can|may) i (?:help|assist)\b|\bis there anything (?:else )?i can\b|\bi can help you with\b|"
    r"\bwould you like me to\b|\bfeel free to ask\b|\bhappy to help\b", re.I)
_FOURTH_WALL = re.compile(
    r"\bas (?:a|the) (?:simulated |real )?user\b|\bin this (?:simulation|role-?play|exercise)\b|\bmy persona\b|"
    r"\b(?:the|this) persona\b|\bi am (?:playing|simulating|role-?playing)\b|\bsimulated (?:user|conversation)\b|"
    r"\bas an ai\b|\b(?:a|an|the) (?:large )?language model\b|\bthe system prompt\b", re.I)
_STRUCTURED = re.compile(r"^\s{0,3}#{1,4}\s|^\s*\|[-: |]+\|\s*$", re.M)
_LIST_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+\S", re.M)
_CODE = re.compile(r"`[^`\n]+`|<[^<>\n]{1,40}>|\{[^{}\n]{1,40}\}")  # what a rewrite must carry over as it is
_REQUEST = re.compile(r"\?|\b(?:how|what|why|which|when|where|who|can|could|would|will|should|is|are|do|does|"
                      r"please|help|need|want|looking for|explain|tell|show|give|write|make|fix|suggest|recommend|"
                      r"plan|compare|list|find|create|draft|translate|summari[sz]e|check|teach)\b", re.I)

# persona languages, by the names a bank uses, to ISO 639-1 and the script their text is in
LANGUAGES = {"english": "en", "spanish": "es", "german": "de", "french": "fr", "portuguese": "pt", "italian": "it",
             "dutch": "nl", "polish": "pl", "turkish": "tr", "swedish": "sv", "indonesian": "id", "hindi": "hi",
             "japanese": "ja", "chinese": "zh", "korean": "ko", "russian": "ru", "arabic": "ar", "ukrainian": "uk"}
_SCRIPTS = {"hi": ("DEVANAGARI",), "ja": ("HIRAGANA", "KATAKANA", "CJK"), "zh": ("CJK",), "ko": ("HANGUL",),
            "ru": ("CYRILLIC",), "uk": ("CYRILLIC",), "ar": ("ARABIC",)}
LANGUAGE_KEYS = ("language", "preferred_language", "lang")
MIN_LETTERS = 25  # shorter turns say too little to tell their language


def persona_language(persona: Mapping[str, str]) -> str | None:
    """The ISO code of the persona's language, when its features name one personasim knows."""
    name = next((str(persona[k]).strip().lower() for k in LANGUAGE_KEYS if persona.get(k)), None)
    return LANGUAGES.get(name) if name else None


def _letters(text: str) -> list[str]:
    return [c for c in text if c.isalpha()]


def language_of(text: str) -> str | None:
    """The language a text is in (its script, then langdetect for Latin script), or None when it is
    too short to tell."""
    letters = _letters(text)
    if len(letters) < MIN_LETTERS:
        return None
    scripts = [unicodedata.name(c, "").split(" ")[0] for c in letters]
    for code, names in _SCRIPTS.items():
        share = sum(1 for s in scripts if s in names) / len(scripts)
        if share >= 0.5 and code not in ("ja", "zh"):
            return code
    if sum(1 for s in scripts if s in ("HIRAGANA", "KATAKANA")) / len(scripts) >= 0.1:
        return "ja"
    if sum(1 for s in scripts if s == "CJK") / len(scripts) >= 0.5:
        return "zh"
    from langdetect import DetectorFactory, LangDetectException, detect_langs

    DetectorFactory.seed = 0  # langdetect is random unless seeded
    try:
        best = detect_langs(text)[0]
    except LangDetectException:
        return None
    code = best.lang.split("-")[0]
    return code if best.prob >= 0.8 else None


@dataclass
class Draft:
    """One draft under the gate: its text, what it may quote, who wrote it."""

    text: str
    persona: Mapping[str, str]
    context: Sequence[str] = ()
    offline: bool = False  # the offline stand-ins write English for every persona: no language rule
    history: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (role, text) so far


def _found(pattern: re.Pattern[str], draft: Draft) -> str | None:
    """What `pattern` finds in the draft outside code and outside what the context already says."""
    quoted = "\n".join(draft.context).lower()
    for match in pattern.finditer(outside_code(draft.text)):
        if match.group(0).strip().lower() not in quoted:
            return match.group(0).strip()
    return None


def user_turn_rules(draft: Draft, config: GateConfig) -> tuple[str, str] | None:
    """The first rule a user turn breaks, as (reason, detail), or None."""
    for reason, pattern in (("assistant_like", _ASSISTANT_LIKE), ("offers_help", _OFFERS_HELP),
                            ("fourth_wall", _FOURTH_WALL)):
        found = _found(pattern, draft)
        if found:
            return reason, f"a user does not write {found!r}"
    if _structured(outside_code(draft.text)) and not any(_structured(c) for c in draft.context):
        return "assistant_like", "headers, tables or long lists read as an assistant's answer"
    return _language(draft, config)


def _structured(text: str) -> bool:
    return bool(_STRUCTURED.search(text)) or len(_LIST_LINE.findall(text)) >= 4


def rewrite_rules(draft: Draft, query: str, config: GateConfig) -> tuple[str, str] | None:
    """The first rule a rewrite of `query` breaks: it must still ask (told by English words: other
    languages are the judge's to check), keep the query's code, and be in the persona's language."""
    english = persona_language(draft.persona) in (None, "en")
    if english and _REQUEST.search(query) and not _REQUEST.search(draft.text):
        return "not_a_request", "the rewrite no longer asks for anything"
    lost = [code for code in _CODE.findall(query) if code not in draft.text]
    if lost:
        return "code_lost", f"the query's {lost[0]!r} is not in the rewrite"
    return _language(draft, config)


def _language(draft: Draft, config: GateConfig) -> tuple[str, str] | None:
    wanted = persona_language(draft.persona) if config.language and not draft.offline else None
    if wanted is None:
        return None
    found = language_of(outside_code(draft.text))
    if found is not None and found != wanted:
        return "wrong_language", f"written in {found!r}, the persona writes in {wanted!r}"
    return None


class TurnGate:
    """The gate for the drafts of one turn: each draft's rules, then the judge's check, and a
    verdict per draft and stage."""

    def __init__(self, config: GateConfig, judge: Judge | None) -> None:
        self.config = config
        self.judge = judge if config.judge else None
        self.verdicts: list[Verdict] = []
        self.attempt = 0

    def check(self, checked: Checked, draft: Draft, ledger: Ledger,
              rules: Callable[[Draft], tuple[str, str] | None],
              judged: Callable[[Judge], tuple[Outcome, str]]) -> Checked:
        """`checked` (a draft after its role's contract) with the gate's first objection, if any."""
        self.attempt += 1
        if self.config.rules:
            broken = checked.problem or rules(draft)
            self.verdicts.append(Verdict(self.attempt, "rules", "fail" if broken else "pass",
                                         f"{broken[0]}: {broken[1]}" if broken else ""))
            if broken and checked.problem is None:
                checked.fail(*broken)
        if checked.problem is None and self.judge is not None:
            outcome, reason = judged(self.judge)
            self.verdicts.append(Verdict(self.attempt, "judge", outcome, reason))
            if outcome == "fail":
                checked.fail("judge_rejected", reason)
        return checked
