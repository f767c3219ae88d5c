"""Rule-based text perturbations: fast, deterministic under a seeded `random.Random`, no LLM.

Each function returns the perturbed text and never turns a non-empty text into an empty one.
Words are split on whitespace with the whitespace kept, so newlines and spacing survive.
"""

from __future__ import annotations

import random
import re

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_POS = {ch: (r, c) for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}


def _neighbours(ch: str) -> str:
    r, c = _POS[ch]
    near = []
    for dr in (-1, 0, 1):
        row = r + dr
        if 0 <= row < len(_ROWS):
            for dc in (-1, 0, 1):
                col = c + dc
                if (dr or dc) and 0 <= col < len(_ROWS[row]):
                    near.append(_ROWS[row][col])
    return "".join(near)


KEYBOARD_NEIGHBOURS = {ch: _neighbours(ch) for ch in _POS}

FILLERS = ("um", "like", "basically", "actually", "you know", "kinda", "I mean", "sort of")

SYNONYMS = {
    "help": "assist", "make": "create", "use": "utilize", "show": "demonstrate", "fix": "repair",
    "explain": "clarify", "big": "large", "small": "tiny", "fast": "quick", "quick": "fast",
    "good": "decent", "bad": "poor", "best": "optimal", "need": "require", "want": "would like",
    "find": "locate", "start": "begin", "get": "obtain", "change": "modify", "idea": "notion",
    "problem": "issue", "issue": "problem", "easy": "simple", "simple": "easy", "hard": "difficult",
    "difficult": "hard", "build": "construct", "write": "compose", "check": "verify", "try": "attempt",
    "way": "method", "think": "reckon", "buy": "purchase", "job": "role", "trip": "journey",
    "cheap": "affordable", "tell": "inform", "give": "provide", "learn": "pick up", "plan": "schedule",
}

_TOKEN = re.compile(r"(\s+)")
_WORD_CORE = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)


def _split(text: str) -> list[str]:
    """Alternating words and whitespace runs; words at even positions when text starts with a word."""
    return [t for t in _TOKEN.split(text) if t != ""]


def _tokens_and_words(text: str) -> tuple[list[str], list[int]]:
    """The tokens, and the positions of the ones that are words."""
    tokens = _split(text)
    return tokens, [i for i, t in enumerate(tokens) if not t.isspace()]


def typo(text: str, rng: random.Random, intensity: float = 0.05) -> str:
    """Replace letters with a keyboard neighbour (case kept); at least one if any letter qualifies."""
    chars = list(text)
    eligible = [i for i, ch in enumerate(chars) if ch.lower() in KEYBOARD_NEIGHBOURS]
    if not eligible:
        return text
    chosen = [i for i in eligible if rng.random() < intensity] or [rng.choice(eligible)]
    for i in chosen:
        ch = chars[i]
        new = rng.choice(KEYBOARD_NEIGHBOURS[ch.lower()])
        chars[i] = new.upper() if ch.isupper() else new
    return "".join(chars)


def word_swap(text: str, rng: random.Random, num_swaps: int = 1) -> str:
    """Swap `num_swaps` distinct adjacent word pairs (distinct, so two swaps never undo each other)."""
    tokens, words = _tokens_and_words(text)
    if len(words) < 2:
        return text
    for k in rng.sample(range(len(words) - 1), min(num_swaps, len(words) - 1)):
        a, b = words[k], words[k + 1]
        tokens[a], tokens[b] = tokens[b], tokens[a]
    return "".join(tokens)


def word_deletion(text: str, rng: random.Random, deletion_rate: float = 0.1) -> str:
    """Drop words at `deletion_rate`; at least one dropped and at least one kept."""
    tokens, words = _tokens_and_words(text)
    if len(words) < 2:
        return text
    drop = {i for i in words if rng.random() < deletion_rate} or {rng.choice(words)}
    if len(drop) >= len(words):
        drop.discard(rng.choice(sorted(drop)))
    kept = [t for i, t in enumerate(tokens) if i not in drop and not t.isspace()]
    return " ".join(kept)


def word_insertion(text: str, rng: random.Random, insertion_rate: float = 0.1) -> str:
    """Insert filler words before words at `insertion_rate`; at least one."""
    tokens, words = _tokens_and_words(text)
    if not words:
        return text
    chosen = {i for i in words if rng.random() < insertion_rate} or {rng.choice(words)}
    out = []
    for i, t in enumerate(tokens):
        if i in chosen:
            out.append(rng.choice(FILLERS) + " ")
        out.append(t)
    return "".join(out)


def synonym_replacement(text: str, rng: random.Random, replacement_rate: float = 0.3) -> str:
    """Replace known words with a synonym at `replacement_rate` (at least one if any is known)."""
    tokens, words = _tokens_and_words(text)
    known = []
    for i in words:
        match = _WORD_CORE.match(tokens[i])
        if match is None:  # the pattern matches any text; this keeps the types honest
            continue
        lead, core, tail = match.groups()
        if core.lower() in SYNONYMS:
            known.append((i, lead, core, tail))
    if not known:
        return text
    chosen = [k for k in known if rng.random() < replacement_rate] or [rng.choice(known)]
    for i, lead, core, tail in chosen:
        syn = SYNONYMS[core.lower()]
        if core[:1].isupper():
            syn = syn[:1].upper() + syn[1:]
        tokens[i] = lead + syn + tail
    return "".join(tokens)
