"""Style transfer: the seed query rewritten in the persona's voice, with `transfer_probability`."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping

from personasim.config import ContractConfig
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger
from personasim.llm.repair import Checked, ask_checked
from personasim.llm.types import Prompt, Reply
from personasim.prompts import Prompts
from personasim.roles.contract import clean, common_problems
from personasim.roles.persona_text import format_persona, trait

_ANSWER = re.compile(r"^\s*(sure|certainly|of course|absolutely|great question|here(?:'s| is) (?:how|what|a|an|the)\b|"
                     r"to \w+[^,.\n]{0,60}, you|you (?:can|should|could|need)\b|yes[,!.]|no[,!.]|i(?:'d| would) "
                     r"(?:be happy|recommend)|i can help)", re.I)
_STEPS = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+\S", re.M)


class StyleTransfer:
    """The seed query in the persona's voice: a rewrite of the query, never an answer to it."""

    def __init__(self, client: LLMClient, transfer_probability: float, contracts: ContractConfig | None = None,
                 prompts: Prompts | None = None) -> None:
        self.client = client
        self.prompts = prompts or Prompts()
        self.transfer_probability = transfer_probability
        self.contracts = contracts or ContractConfig()

    def prompt(self, query: str, persona: Mapping[str, str]) -> Prompt:
        return Prompt(op.REWRITE_QUERY, [
            {"role": "system", "content": self.prompts.render("rewrite_query", persona=format_persona(persona))},
            {"role": "user", "content": json.dumps({"query": query}, ensure_ascii=False)},
        ], offline=lambda rng: offline_rewrite(query, persona, rng))

    def check(self, query: str, persona: Mapping[str, str], reply: Reply) -> Checked:
        """The contract: a rewrite of `query` (no answer, no preamble, quotes, label, placeholder or
        echo of the instructions), its length within the configured ratio of the query's. What the
        query and the persona hold (code, markup, a list of steps) is the rewrite's to keep."""
        context = (query, format_persona(persona))
        checked = common_problems(clean(reply.text, context=context), reply.finish_reason,
                                  self.prompts.text("rewrite_query"), context)
        text = checked.text
        words, query_words = len(text.split()), max(1, len(query.split()))
        too_long = words > self.contracts.max_length_ratio * query_words + 12
        too_short = query_words >= 5 and words < self.contracts.min_length_ratio * query_words
        if _ANSWER.match(text) or len(_STEPS.findall(text)) >= 2 > len(_STEPS.findall(query)):
            checked.fail("answer_not_rewrite", f"it answers the query: {text[:60]!r}")
        elif too_long or too_short:
            checked.fail("length_ratio", f"{words} words for a query of {query_words}")
        return checked

    def rewrite(self, query: str, persona: Mapping[str, str], rng: random.Random, ledger: Ledger
                ) -> tuple[str, bool, str | None]:
        """(initial query, rewritten or not, why the query was kept after every rewrite broke the contract)."""
        if rng.random() >= self.transfer_probability:
            return query, False, None
        checked = ask_checked(self.client, self.prompt(query, persona), ledger, "style_transfer",
                              self.contracts.repair_rounds, lambda reply: self.check(query, persona, reply))
        if checked.problem is not None:
            return query, False, f"{checked.problem[0]}: {checked.problem[1]}"
        return checked.text, True, None


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
