"""The user simulator: plays the persona, asks a follow-up, or says it is satisfied."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from personasim.config import ContractConfig
from personasim.config.spec import GateConfig
from personasim.judgement import Verdict
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger, UsageLog
from personasim.llm.repair import Checked, ContractViolation, ask_checked
from personasim.llm.types import Prompt, Reply
from personasim.prompts import Prompts, render
from personasim.records import Message
from personasim.roles.contract import clean, common_problems, similarity
from personasim.roles.gate import Draft, TurnGate, user_turn_rules
from personasim.roles.judge import Judge
from personasim.roles.persona_text import format_persona, topic, trait

STOP = "\x00stop"  # what a passing stop signal checks as (no user turn can be this)

_ASPECTS = ("edge cases", "performance", "a concrete example", "the trade-offs", "how to test it",
            "common mistakes", "the cost", "a simpler alternative", "what could go wrong")


@dataclass(frozen=True)
class FollowUp:
    """A user turn that passed its contract and the gate, and what the gate said of each draft."""

    text: str
    verdicts: tuple[Verdict, ...] = ()


def _said(message: Message) -> str:
    """What the person meant (the clean text of a noised turn)."""
    return message.clean_text if message.clean_text is not None else message.content


class UserFeedbackModel:
    """The persona's side of the conversation: a user turn, or the explicit stop signal."""

    def __init__(self, llm_client: LLMClient, min_turns: int = 2, max_turns: int = 5,
                 usage: UsageLog | None = None, contracts: ContractConfig | None = None,
                 prompts: Prompts | None = None, gate: GateConfig | None = None, judge: Judge | None = None) -> None:
        self.llm = llm_client
        self.prompts = prompts or Prompts()
        self.min_turns = min_turns
        self.max_turns = max_turns
        self.usage = usage
        self.contracts = contracts or ContractConfig()
        self.gate = gate or GateConfig()
        self.judge = judge

    def prompt(self, persona: Mapping[str, str], history: Sequence[Message], may_stop: bool) -> Prompt:
        transcript = "\n\n".join(f"{'PERSON' if m.role == 'user' else 'ASSISTANT'}: {_said(m)}" for m in history)
        rule, persona_text = _stop_rule(may_stop), format_persona(persona)
        if "stop_rule" in string.Template(self.prompts.text("follow_up")).get_identifiers():  # a config's own template
            system, ask = self.prompts.render("follow_up", persona=persona_text, stop_rule=rule), transcript
        else:  # what repeats first (instructions, persona, the conversation so far), the rule that changes last
            system, ask = self.prompts.render("follow_up", persona=persona_text), f"{transcript}\n\n--\n{rule.strip()}"
        first = next((_said(m) for m in history if m.role == "user"), "")
        return Prompt(op.FOLLOW_UP, [{"role": "system", "content": system}, {"role": "user", "content": ask}],
                      offline=lambda rng: offline_follow_up(persona, first, may_stop, rng))

    def check(self, reply: Reply, persona: Mapping[str, str], history: Sequence[Message], may_stop: bool) -> Checked:
        """The contract: the stop signal alone (once stopping is allowed), or a user turn that is not
        empty, carries no label, placeholder or echoed instructions, and copies neither the
        assistant's reply nor an earlier user turn."""
        bare = reply.text.strip().strip("\"'`*. ")
        if bare.upper() == op.SATISFIED.upper() or bare.upper() == op.SATISFIED.strip("[]").upper():
            checked = Checked(STOP)
            return checked if may_stop else checked.fail("early_stop", "the persona may not stop yet")
        context = [format_persona(persona), *(m.content for m in history), *(_said(m) for m in history)]
        checked = clean(reply.text, cut_transcript=True, context=context)
        finish_reason = reply.finish_reason
        if finish_reason == "length":  # a user turn cut at the limit: its whole sentences, if they say something
            whole = re.match(r"(?s)(.*[.?!])\s", checked.text + " ")
            if whole and len(whole.group(1).split()) >= 3:
                checked.text, finish_reason = whole.group(1), "stop"
                checked.cleaned.append("trimmed_at_limit")
        checked = common_problems(checked, finish_reason, f"{self.prompts.text('follow_up')}\n{_stop_rule(may_stop)}",
                                  context)
        if op.SATISFIED.lower() in checked.text.lower():
            checked.fail("stop_signal_mixed", "the stop signal must stand alone")
        last = next((m for m in reversed(history) if m.role == "assistant"), None)
        if last is not None and similarity(checked.text, last.content) >= 0.85:
            checked.fail("copy_of_assistant", "the reply repeats the assistant's message")
        if any(similarity(checked.text, _said(m)) >= 0.9 for m in history if m.role == "user"):
            checked.fail("repeat_of_user_turn", "the reply repeats an earlier user turn")
        return checked

    def next_turn(self, persona: Mapping[str, str], history: Sequence[Message], current_turn: int,
                  target_turns: int, ledger: Ledger) -> FollowUp | None:
        """The next user message after `history` (which ends with the assistant's reply), or None to stop.

        It ends at `target_turns` (capped by max_turns); before that the persona may stop once
        `min_turns` is reached; before `min_turns` it always follows up. Each draft passes its
        contract, then the gate (rules, then the judge when there is one). A reply that still
        fails after its repairs raises ContractViolation.
        """
        if current_turn >= min(target_turns, self.max_turns):
            return None
        may_stop = current_turn >= self.min_turns
        gate = TurnGate(self.gate, self.judge)
        said = [(m.role, _said(m)) for m in history]

        def check(reply: Reply) -> Checked:
            checked = self.check(reply, persona, history, may_stop)
            if checked.text == STOP:
                return checked
            draft = Draft(checked.text, persona, [format_persona(persona), *(text for _, text in said)],
                          reply.usage.provider == "offline", said)
            return gate.check(checked, draft, ledger, lambda d: user_turn_rules(d, self.gate),
                              lambda judge: judge.check_turn(persona, said, draft.text, ledger))

        checked = ask_checked(self.llm, self.prompt(persona, history, may_stop), ledger, "user_simulator",
                              self.contracts.repair_rounds, check)
        if checked.problem is not None:
            raise ContractViolation("user_simulator", *checked.problem)
        return None if checked.text == STOP else FollowUp(checked.text, tuple(gate.verdicts))

    # -- the reference API ----------------------------------------------------------------------
    def generate_feedback(self, persona_features: dict[str, str], conversation_history: list[Message],
                          assistant_response: str, current_turn: int, target_turns: int) -> str | None:
        """The next user message, or None when the conversation should end."""
        history = list(conversation_history)
        if not history or history[-1].content != assistant_response:
            history.append(Message("assistant", assistant_response, turn=current_turn))
        follow_up = self.next_turn(persona_features, history, current_turn, target_turns, Ledger(log=self.usage))
        return follow_up.text if follow_up is not None else None


def _stop_rule(may_stop: bool) -> str:
    return render("follow_up.may_stop", satisfied=op.SATISFIED) if may_stop else render("follow_up.must_go_on")


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
