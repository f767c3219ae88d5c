"""Style transfer: the seed query rewritten in the persona's voice, with `transfer_probability`."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping

from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger
from personasim.llm.types import Prompt
from personasim.prompts import render
from personasim.roles.persona_text import format_persona, trait


class StyleTransfer:
    def __init__(self, client: LLMClient, transfer_probability: float) -> None:
        self.client = client
        self.transfer_probability = transfer_probability

    def prompt(self, query: str, persona: Mapping[str, str]) -> Prompt:
        return Prompt(op.REWRITE_QUERY, [
            {"role": "system", "content": render("rewrite_query", persona=format_persona(persona))},
            {"role": "user", "content": json.dumps({"query": query}, ensure_ascii=False)},
        ], offline=lambda rng: offline_rewrite(query, persona, rng))

    def rewrite(self, query: str, persona: Mapping[str, str], rng: random.Random, ledger: Ledger) -> tuple[str, bool]:
        """(initial query, whether it was rewritten): rewritten with the configured probability."""
        if rng.random() >= self.transfer_probability:
            return query, False
        reply = self.client.complete(self.prompt(query, persona), ledger)
        return reply.text.strip().strip('"').strip() or query, True


def offline_rewrite(query: str, persona: Mapping[str, str], rng: random.Random) -> str:
    """The query with the persona's style, length, level and tone applied by rule."""
    text = query.strip()
    style, length = trait(persona, "communication_style"), trait(persona, "query_length_pref")
    level, tone, role = trait(persona, "technical_level"), trait(persona, "tone"), persona.get("role")
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
