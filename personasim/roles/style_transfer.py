"""Style transfer: the seed query rewritten in the persona's voice, with `transfer_probability`."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

from personasim.config import ContractConfig
from personasim.config.spec import GateConfig
from personasim.judgement import Verdict
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger
from personasim.llm.repair import Checked, ask_checked
from personasim.llm.types import Prompt, Reply
from personasim.prompts import Prompts
from personasim.roles.contract import clean, common_problems
from personasim.roles.gate import Draft, TurnGate, rewrite_rules
from personasim.roles.judge import Judge
from personasim.roles.persona_text import format_persona, trait

_ANSWER = re.compile(r"^\s*(sure|certainly|of course|absolutely|great question|here(?:'s| is) (?:how|what|a|an|the)\b|"
                     r"to \w+[^,.\n]{0,60}, you|you (?:can|should|could|need)\b|yes[,!.]|no[,!.]|i(?:'d| would) "
                     r"(?:be happy|recommend)|i can help)", re.I)
_STEPS = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+\S", re.M)


@dataclass(frozen=True)
class Rewrite:
    """The query the conversation starts from: rewritten or kept (with the reason when every rewrite
    broke its contract or failed the gate), and what the gate said of each draft."""

    text: str
    transferred: bool
    fallback: str | None = None
    verdicts: tuple[Verdict, ...] = ()


class StyleTransfer:
    """The seed query in the persona's voice: a rewrite of the query, never an answer to it."""

    def __init__(self, client: LLMClient, transfer_probability: float, contracts: ContractConfig | None = None,
                 prompts: Prompts | None = None, gate: GateConfig | None = None, judge: Judge | None = None) -> None:
        self.client = client
        self.prompts = prompts or Prompts()
        self.transfer_probability = transfer_probability
        self.contracts = contracts or ContractConfig()
        self.gate = gate or GateConfig()
        self.judge = judge

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

    def rewrite(self, query: str, persona: Mapping[str, str], rng: random.Random, ledger: Ledger) -> Rewrite:
        """The query in the persona's voice, each draft through its contract and the gate (a rewrite
        stays the same request; the judge's check when there is one); the query as it was, with the
        reason, when no draft passed."""
        if rng.random() >= self.transfer_probability:
            return Rewrite(query, False)
        gate = TurnGate(self.gate, self.judge)

        def check(reply: Reply) -> Checked:
            checked = self.check(query, persona, reply)
            draft = Draft(checked.text, persona, (query, format_persona(persona)), reply.usage.provider == "offline")
            return gate.check(checked, draft, ledger, lambda d: rewrite_rules(d, query, self.gate),
                              lambda judge: judge.check_rewrite(persona, query, draft.text, ledger))

        checked = ask_checked(self.client, self.prompt(query, persona), ledger, "style_transfer",
                              self.contracts.repair_rounds, check)
        if checked.problem is not None:
            return Rewrite(query, False, f"{checked.problem[0]}: {checked.problem[1]}", tuple(gate.verdicts))
        return Rewrite(checked.text, True, None, tuple(gate.verdicts))


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
