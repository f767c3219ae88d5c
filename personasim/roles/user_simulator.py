"""The user simulator: plays the persona, asks a follow-up, or says it is satisfied."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from personasim.errors import LLMCallError
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger, UsageLog
from personasim.llm.types import Prompt
from personasim.prompts import render
from personasim.records import Message
from personasim.roles.persona_text import format_persona, topic, trait

_ATTEMPTS = 3
_ASPECTS = ("edge cases", "performance", "a concrete example", "the trade-offs", "how to test it",
            "common mistakes", "the cost", "a simpler alternative", "what could go wrong")


def _clean(text: str) -> str:
    text = text.strip()
    for prefix in ("User:", "user:", "Me:"):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
    return text.strip('"').strip()


def _said(message: Message) -> str:
    """What the person meant (the clean text of a noised turn)."""
    return message.clean_text if message.clean_text is not None else message.content


class UserFeedbackModel:
    def __init__(self, llm_client: LLMClient, min_turns: int = 2, max_turns: int = 5,
                 usage: UsageLog | None = None) -> None:
        self.llm = llm_client
        self.min_turns = min_turns
        self.max_turns = max_turns
        self.usage = usage

    def prompt(self, persona: Mapping[str, str], history: Sequence[Message], may_stop: bool) -> Prompt:
        transcript = "\n\n".join(f"{'PERSON' if m.role == 'user' else 'ASSISTANT'}: {_said(m)}" for m in history)
        rule = render("follow_up.may_stop", satisfied=op.SATISFIED) if may_stop else render("follow_up.must_go_on")
        system = render("follow_up", persona=format_persona(persona), stop_rule=rule)
        first = next((_said(m) for m in history if m.role == "user"), "")
        return Prompt(op.FOLLOW_UP, [{"role": "system", "content": system}, {"role": "user", "content": transcript}],
                      offline=lambda rng: offline_follow_up(persona, first, may_stop, rng))

    def next_turn(self, persona: Mapping[str, str], history: Sequence[Message], current_turn: int,
                  target_turns: int, ledger: Ledger) -> str | None:
        """The next user message after `history` (which ends with the assistant's reply), or None to stop.

        It ends at `target_turns` (capped by max_turns); before that the persona may stop once
        `min_turns` is reached; before `min_turns` it always follows up.
        """
        if current_turn >= min(target_turns, self.max_turns):
            return None
        may_stop = current_turn >= self.min_turns
        prompt = self.prompt(persona, history, may_stop)
        for _ in range(_ATTEMPTS):
            reply = self.llm.complete(prompt, ledger).text
            if op.SATISFIED in reply:
                if may_stop:
                    return None
                reply = reply.replace(op.SATISFIED, "")
            reply = _clean(reply)
            if reply:
                return reply
        raise LLMCallError(f"user_simulator gave no follow-up in {_ATTEMPTS} tries before min_turns "
                           f"({self.min_turns}) was reached")

    # -- the reference API ----------------------------------------------------------------------
    def generate_feedback(self, persona_features: dict[str, str], conversation_history: list[Message],
                          assistant_response: str, current_turn: int, target_turns: int) -> str | None:
        """The next user message, or None when the conversation should end."""
        history = list(conversation_history)
        if not history or history[-1].content != assistant_response:
            history.append(Message("assistant", assistant_response, turn=current_turn))
        return self.next_turn(persona_features, history, current_turn, target_turns, Ledger(log=self.usage))


def offline_follow_up(persona: Mapping[str, str], first_query: str, may_stop: bool, rng: random.Random) -> str:
    if may_stop and rng.random() < 0.3:
        return op.SATISFIED
    style, tone = trait(persona, "communication_style"), trait(persona, "tone")
    aspect = rng.choice(_ASPECTS)
    subject = topic(first_query)
    if "casual" in style or "informal" in style:
        return rng.choice((f"ok cool, but what about {aspect}?", f"hmm and {aspect} for {subject}?"))
    if "impatient" in tone or "direct" in tone:
        return f"Too long. Just tell me {aspect}."
    if "formal" in style:
        return f"Thank you. Could you elaborate on {aspect} regarding {subject}?"
    return rng.choice((f"Thanks. Can you say more about {aspect}?", f"What about {aspect} in this case?"))
