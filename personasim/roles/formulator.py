"""The formulator: one persona-tailored system prompt for the assistant, written once per persona.

Without it the assistant runs as a generic helper and never learns who it is talking to. Its
reply is held to a contract like every role's: long enough, addressed to the assistant ("you"),
no refusal, no placeholder or echo of the instructions, no role label; asked again with the
reason, then replaced by a rendering of the features by rule, labelled `fallback` with the reason.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping

from personasim.config import ContractConfig
from personasim.config.personas import FormulationSettings
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger
from personasim.llm.repair import Checked, ask_checked
from personasim.llm.types import Prompt, Reply
from personasim.personas.persona import Persona
from personasim.prompts import Prompts, render
from personasim.roles.contract import clean, common_problems
from personasim.roles.persona_text import format_persona, trait

_YOU = re.compile(r"\b(you|your|you're|yourself)\b", re.I)
_REFUSAL = re.compile(r"^\W*(i(?:'m| am) sorry|i apologi[sz]e|i can(?:no|')t|i am unable|i'm unable|as an ai)", re.I)
_SPEAKS_AS_USER = re.compile(r"^\W*(i am|i'm|my name is|hi,? i)\b", re.I)


class Formulator:
    def __init__(self, client: LLMClient, settings: FormulationSettings | None = None,
                 contracts: ContractConfig | None = None, prompts: Prompts | None = None) -> None:
        self.client = client
        self.settings = settings or FormulationSettings()
        self.contracts = contracts or ContractConfig()
        self.prompts = prompts or Prompts()

    def prompt(self, features: Mapping[str, str]) -> Prompt:
        return Prompt(op.FORMULATE, [
            {"role": "system", "content": self.prompts.render("formulate_system_prompt",
                                                              persona=format_persona(features))},
            {"role": "user", "content": json.dumps({"persona": dict(features)}, ensure_ascii=False)},
        ], offline=lambda rng: offline_system_prompt(features, rng))

    def check(self, features: Mapping[str, str], reply: Reply) -> Checked:
        """The contract: a system prompt addressed to the assistant, long enough, no refusal, no
        transcript of the person speaking, no label, placeholder or echo of the instructions."""
        context = (format_persona(features), *features.values())
        checked = common_problems(clean(reply.text, context=context), reply.finish_reason,
                                  self.prompts.text("formulate_system_prompt"), context)
        text = checked.text
        words = len(text.split())
        if _REFUSAL.match(text):
            checked.fail("refusal", f"it declines instead of writing the prompt: {text[:60]!r}")
        elif words < self.settings.min_words or len(text) < self.settings.min_chars:
            least = f"{self.settings.min_words} words" + (f", {self.settings.min_chars} characters"
                                                          if self.settings.min_chars else "")
            checked.fail("too_short", f"{words} words, {len(text)} characters (at least {least})")
        elif not _YOU.search(text) or _SPEAKS_AS_USER.match(text):
            checked.fail("not_addressed_to_assistant", "a system prompt speaks to the assistant as 'you', not as "
                                                       "the person")
        return checked

    def formulate(self, persona: Persona, ledger: Ledger) -> Persona:
        """The persona with its system prompt: formulated, or the labelled fallback with the reason."""
        checked = ask_checked(self.client, self.prompt(persona.features), ledger, "formulator",
                              self.contracts.repair_rounds, lambda reply: self.check(persona.features, reply))
        usage, violations = tuple(ledger.usage), tuple(ledger.violations)
        if checked.problem is not None:
            return persona.with_prompt(fallback_prompt(persona.features), "fallback",
                                       f"{checked.problem[0]}: {checked.problem[1]}", usage=usage,
                                       violations=violations)
        return persona.with_prompt(checked.text, "formulated", usage=usage, violations=violations)


def fallback_prompt(features: Mapping[str, str]) -> str:
    """The features rendered by rule: what the assistant gets when no formulated prompt passed."""
    return render("system_prompt.fallback", persona=format_persona(features))


def offline_system_prompt(features: Mapping[str, str], rng: random.Random) -> str:
    """A persona-aware prompt by rule, for the offline backend (labelled so by its provider)."""
    role, level = features.get("role", "person").replace("_", " "), trait(features, "technical_level") or "mixed"
    style, tone = trait(features, "communication_style") or "plain", trait(features, "tone") or "neutral"
    length = trait(features, "query_length_pref") or trait(features, "detail_orientation") or "medium"
    opener = rng.choice((f"You are helping a {role}.", f"The person you are assisting works as a {role}."))
    extras = [f"{k.replace('_', ' ')}: {v.replace('_', ' ')}" for k, v in features.items()
              if k not in ("role", "technical_level", "communication_style", "tone", "query_length_pref")]
    rng.shuffle(extras)
    lines = [opener,
             f"Pitch your explanations at a {level} level and write in a {style}, {tone} register.",
             f"They prefer {length.replace('_', ' ')} exchanges, so size your answers to match.",
             rng.choice(("Check what they already know before going deep.", "Lead with what they asked for.")),
             ]
    if extras:
        lines.append("Keep in mind: " + "; ".join(extras[:6]) + ".")
    return " ".join(lines)
