"""How a persona reads in a prompt, and the words the offline stand-ins build their text from."""

from __future__ import annotations

import re
from collections.abc import Mapping

_STOPWORDS = {
    "the", "a", "an", "and", "or", "to", "of", "in", "on", "for", "with", "is", "are", "be", "can", "you",
    "me", "my", "i", "how", "what", "why", "do", "does", "it", "this", "that", "please", "could", "would",
    "should", "about", "some", "any", "your", "from", "at", "by", "as", "so", "if", "help", "want", "need",
}


def format_persona(features: Mapping[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in features.items())


def keywords(text: str, limit: int = 3) -> list[str]:
    """The first few content words of a text, lower-cased."""
    words = re.findall(r"[^\W\d_][\w'-]*", text.lower())
    seen: list[str] = []
    for w in words:
        if len(w) > 3 and w not in _STOPWORDS and w not in seen:
            seen.append(w)
    return seen[:limit]


def topic(text: str) -> str:
    return " ".join(keywords(text)) or "your question"


def trait(features: Mapping[str, str], key: str) -> str:
    return str(features.get(key, "")).lower()
