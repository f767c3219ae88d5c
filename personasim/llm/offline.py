"""The offline backend: persona-aware template text, deterministic under a seed, no network.

It stands in for every role so the whole pipeline runs on a fresh machine without a key.
Every completion says `provider: offline`, so nobody mistakes its text for model output.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from personasim.distractor import rules
from personasim.llm import operations as op
from personasim.llm.types import ChatRequest, Completion
from personasim.rng import derive_seed

_STOPWORDS = {
    "the", "a", "an", "and", "or", "to", "of", "in", "on", "for", "with", "is", "are", "be", "can", "you",
    "me", "my", "i", "how", "what", "why", "do", "does", "it", "this", "that", "please", "could", "would",
    "should", "about", "some", "any", "your", "from", "at", "by", "as", "so", "if", "help", "want", "need",
}
_ASPECTS = ("edge cases", "performance", "a concrete example", "the trade-offs", "how to test it",
            "common mistakes", "the cost", "a simpler alternative", "what could go wrong")


def _keywords(text: str, limit: int = 3) -> list[str]:
    words = re.findall(r"[^\W\d_][\w'-]*", text.lower())
    seen: list[str] = []
    for w in words:
        if len(w) > 3 and w not in _STOPWORDS and w not in seen:
            seen.append(w)
    return seen[:limit]


def _topic(text: str) -> str:
    return " ".join(_keywords(text)) or "your question"


def _style(features: Mapping[str, str], key: str) -> str:
    return str(features.get(key, "")).lower()


def rewrite_query(ctx: Mapping[str, Any], rng: random.Random) -> str:
    query = str(ctx["query"]).strip()
    f = ctx.get("persona_features") or {}
    style, length = _style(f, "communication_style"), _style(f, "query_length_pref")
    level, tone, role = _style(f, "technical_level"), _style(f, "tone"), f.get("role")
    text = query
    if "concise" in length or "short" in length:
        words = text.split()
        text = " ".join(words[:12]) + ("…" if len(words) > 12 else "")
    if "casual" in style or "informal" in style:
        text = rng.choice(("hey, ", "quick q: ", "so ", "yo, ")) + text[:1].lower() + text[1:]
    elif "formal" in style:
        text = rng.choice(("Could you please advise: ", "I would appreciate guidance on the following. ")) + text
    if role and rng.random() < 0.5:
        text = f"As a {role}, {text[:1].lower()}{text[1:]}"
    if "advanced" in level or "expert" in level:
        text += rng.choice((" (skip the basics)", " I know the fundamentals already."))
    elif "beginner" in level or "novice" in level:
        text += rng.choice((" I'm new to this, keep it simple.", " please explain like I'm a beginner"))
    if "detailed" in length:
        text += " I'd like a thorough answer with examples."
    if "impatient" in tone or "direct" in tone:
        text += " asap"
    elif "friendly" in tone or "polite" in tone:
        text += rng.choice((" thanks!", " thank you :)"))
    return text


def respond(ctx: Mapping[str, Any], rng: random.Random) -> str:
    user_text = str(ctx["user_text"])
    topic = _topic(user_text)
    if ctx.get("turn", 1) > 1:
        topic = f"{_topic(str(ctx.get('first_user_text', '')))} ({user_text[:60]})"
    steps = rng.sample(("Start from the simplest working version.", "Check the assumptions against your data.",
                        "Measure before you optimise.", "Write a small test that shows the behaviour.",
                        "Keep the configuration in one place.", "Look at the failure cases first.",
                        "Compare two options side by side."), 3)
    opener = rng.choice(("Here is how I would approach", "Good question about", "Let's work through"))
    body = " ".join(f"{i}) {s}" for i, s in enumerate(steps, 1))
    return f"{opener} {topic}: {body} (offline template answer, turn {ctx.get('turn', 1)})"


def follow_up(ctx: Mapping[str, Any], rng: random.Random) -> str:
    if ctx.get("may_stop") and rng.random() < 0.3:
        return op.SATISFIED
    f = ctx.get("persona_features") or {}
    style, tone = _style(f, "communication_style"), _style(f, "tone")
    aspect = rng.choice(_ASPECTS)
    topic = _topic(str(ctx.get("first_user_text", "")))
    if "casual" in style or "informal" in style:
        return rng.choice((f"ok cool, but what about {aspect}?", f"hmm and {aspect} for {topic}?"))
    if "impatient" in tone or "direct" in tone:
        return f"Too long. Just tell me {aspect}."
    if "formal" in style:
        return f"Thank you. Could you elaborate on {aspect} regarding {topic}?"
    return rng.choice((f"Thanks. Can you say more about {aspect}?", f"What about {aspect} in this case?"))


def extract_intent(ctx: Mapping[str, Any], rng: random.Random) -> str:
    text = str(ctx["text"])
    lower = text.lower()
    intent = "request_help"
    for words, name in ((("fix", "error", "bug", "broken", "fail"), "troubleshoot"),
                        (("compare", " vs ", "versus", "better"), "compare"),
                        (("write", "create", "build", "make", "generate"), "create"),
                        (("how",), "how_to"), (("what", "why", "explain"), "explain")):
        if any(w in lower for w in words):
            intent = name
            break
    keys = _keywords(text)
    slots = dict(zip(("topic", "object", "constraint"), keys))
    return json.dumps({"intent": intent, "slots": slots, "confidence": 0.6})


def _drop_slots(text: str, slots: Mapping[str, Any], replacement: str) -> str:
    for value in slots.values():
        if isinstance(value, str) and value:
            text = re.sub(re.escape(value), replacement, text, flags=re.I)
    return text


_REWRITES: dict[str, Callable[[str, dict, random.Random], str]] = {
    "colloquial_speech": lambda t, s, r: r.choice(("so like, ", "ok so ", "ngl ")) + t[:1].lower() + t[1:],
    "incomplete_sentence": lambda t, s, r: " ".join(t.split()[: max(2, math.ceil(len(t.split()) * 0.6))]) + "...",
    "typo_misspelling": lambda t, s, r: rules.typo(t, r, 0.06),
    "punctuation_format": lambda t, s, r: re.sub(r"[.,;:!?]", "", t).lower() or t,
    "emotional_attitude": lambda t, s, r: t + r.choice((" ugh this is so frustrating!!", " I'm really excited!!")),
    "synonym_rewrite": lambda t, s, r: rules.synonym_replacement(t, r, 0.5),
    "word_segmentation": lambda t, s, r: re.sub(r"(\w+) (\w+)", r"\1\2", t, count=1),
    "negative_expression": lambda t, s, r: "I don't want anything complicated, just: " + t,
    "real_life_fragments": lambda t, s, r: r.choice(("sorry, kid yelling lol. ", "on the bus rn, ")) + t,
    "missing_slots": lambda t, s, r: _drop_slots(t, s, "it"),
    "vague_slot_values": lambda t, s, r: _drop_slots(t, s, "that thing"),
    "context_dependency": lambda t, s, r: "about the one I mentioned before: " + t,
    "unclear_priority": lambda t, s, r: t + " or maybe something else matters more, not sure what first",
    "multi_intent": lambda t, s, r: t + " also, can you recommend a good book on it?",
    "intent_ambiguity": lambda t, s, r: (" ".join(t.split()[:4]) + "... help?"),
    "self_contradiction": lambda t, s, r: t + " keep it short. actually no, give me every detail",
    "mind_changing": lambda t, s, r: t + " wait, never mind, I'd rather ask about something related",
}


def semantic_rewrite(ctx: Mapping[str, Any], rng: random.Random) -> str:
    text = str(ctx["text"])
    slots = dict((ctx.get("semantics") or {}).get("slots") or {})
    strategies = list(ctx.get("strategies") or [])
    for name in strategies:
        text = _REWRITES[name](text, slots, rng) or text
    return json.dumps({"noisy_text": text, "applied_strategies": strategies})


def paraphrase(ctx: Mapping[str, Any], rng: random.Random) -> str:
    text = str(ctx["text"])
    lead = rng.choice(("I was wondering, ", "Basically, ", "To put it another way, "))
    return lead + rules.synonym_replacement(text[:1].lower() + text[1:], rng, 0.5)


_RESPONDERS: dict[str, Callable[[Mapping[str, Any], random.Random], str]] = {
    op.REWRITE_QUERY: rewrite_query,
    op.RESPOND: respond,
    op.FOLLOW_UP: follow_up,
    op.EXTRACT_INTENT: extract_intent,
    op.SEMANTIC_REWRITE: semantic_rewrite,
    op.PARAPHRASE: paraphrase,
}


def approx_tokens(text: str) -> int:
    """About four characters a token, the usual rule of thumb for English."""
    return max(1, math.ceil(len(text) / 4))


class OfflineBackend:
    provider = "offline"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def complete(self, request: ChatRequest) -> Completion:
        responder = _RESPONDERS.get(request.operation)
        if responder is None:
            raise ValueError(f"the offline backend has no template for operation {request.operation!r}")
        prompt = json.dumps(request.messages, sort_keys=True)
        rng = random.Random(derive_seed(self.seed, request.model, request.operation, prompt))
        text = responder(request.context, rng)
        return Completion(text=text, input_tokens=sum(approx_tokens(m["content"]) for m in request.messages),
                          output_tokens=approx_tokens(text), model=request.model, provider=self.provider)
