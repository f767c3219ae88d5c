"""The assistant under simulation: one model, or a weighted pool with one model per conversation."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from personasim.config import ContractConfig
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger, UsageLog
from personasim.llm.repair import Checked, ContractViolation, ask_checked
from personasim.llm.types import Prompt, Reply
from personasim.prompts import render
from personasim.records import Message, Violation
from personasim.rng import weighted_choice
from personasim.roles.contract import clean
from personasim.roles.persona_text import topic

_STEPS = ("Start from the simplest working version.", "Check the assumptions against your data.",
          "Measure before you optimise.", "Write a small test that shows the behaviour.",
          "Keep the configuration in one place.", "Look at the failure cases first.",
          "Compare two options side by side.")


@dataclass(frozen=True)
class Answer:
    """An assistant reply that passed its contract: its text, why it ended, and whether it was cut."""

    text: str
    finish_reason: str | None
    truncated: bool


class AssistantModel:
    """The engine draws a pool model per conversation (`choose`) and passes it to `answer`.

    `lock_model` / `respond` / `unlock_model` are the reference API's per-thread form of the same.
    """

    def __init__(self, model_pool: list[tuple[LLMClient, float]], seed: int = 0,
                 usage: UsageLog | None = None, contracts: ContractConfig | None = None) -> None:
        if not model_pool or sum(w for _, w in model_pool) <= 0:
            raise ValueError("model_pool needs at least one model with a positive weight")
        self.model_pool = model_pool
        self.usage = usage
        self.contracts = contracts or ContractConfig()
        self._local = threading.local()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def choose(self, rng: random.Random) -> LLMClient:
        """The pool model for one conversation, by weight."""
        return weighted_choice(rng, [c for c, _ in self.model_pool], [w for _, w in self.model_pool])

    def prompt(self, user_query: str, history: Sequence[Message], system_prompt: str | None) -> Prompt:
        messages = [{"role": "system", "content": system_prompt or render("respond")}]
        messages += [{"role": m.role, "content": m.content} for m in history]
        messages.append({"role": "user", "content": user_query})
        first = history[0].content if history else user_query
        turn = len(history) // 2 + 1
        return Prompt(op.RESPOND, messages, offline=lambda rng: offline_answer(user_query, first, turn, rng))

    def check(self, reply: Reply) -> Checked:
        """The contract: an answer with no role label, not empty. Being cut at max_tokens is the
        truncation policy's business, not a reason to ask again."""
        checked = clean(reply.text)
        if not checked.text:
            checked.fail("empty", "nothing is left after the clean-up")
        return checked

    def answer(self, client: LLMClient, user_query: str, history: Sequence[Message], system_prompt: str | None,
               ledger: Ledger) -> Answer:
        """`client`'s answer to `user_query` after `history` (which does not include it).

        A reply cut at max_tokens follows `contracts.truncation`: 'retry' asks once more with twice
        the limit and keeps the longer reply flagged if that is cut too; 'keep' flags it; 'fail'
        fails the pair.
        """
        prompt = self.prompt(user_query, history, system_prompt)
        rounds = self.contracts.repair_rounds
        checked = ask_checked(client, prompt, ledger, "assistant", rounds, self.check)
        if checked.problem is not None:
            raise ContractViolation("assistant", *checked.problem)
        if checked.finish_reason != "length":
            return Answer(checked.text, checked.finish_reason, truncated=False)
        policy = self.contracts.truncation
        if policy == "retry":
            reply = client.complete(prompt, ledger, max_tokens=2 * client.spec.max_tokens)
            longer = self.check(reply)
            longer.finish_reason = reply.finish_reason
            ledger.violations.append(Violation("assistant", "truncated", "cut at max_tokens; asked again with twice "
                                               "the limit", repaired=longer.finish_reason != "length"))
            if longer.problem is None:
                return Answer(longer.text, longer.finish_reason, truncated=longer.finish_reason == "length")
        else:
            ledger.violations.append(Violation("assistant", "truncated", "cut at max_tokens"))
        if policy == "fail":
            raise ContractViolation("assistant", "truncated", "the reply was cut at max_tokens")
        return Answer(checked.text, checked.finish_reason, truncated=True)

    # -- the reference API ----------------------------------------------------------------------
    def lock_model(self, rng: random.Random | None = None) -> LLMClient:
        """Choose the model for this thread's conversation by weight and keep it until unlock."""
        self._local.client = self.choose(rng or self._draw())
        return self._local.client

    def _draw(self) -> random.Random:
        """A stream for callers without one: reproducible under the seed, safe across threads."""
        with self._rng_lock:
            return random.Random(self._rng.getrandbits(64))

    def unlock_model(self) -> None:
        self._local.client = None

    def respond(self, user_query: str, conversation_history: list[Message], system_prompt: str | None = None) -> str:
        """Answer `user_query` given the earlier messages, with this thread's locked model (or a drawn one)."""
        client = getattr(self._local, "client", None) or self.choose(self._draw())
        return self.answer(client, user_query, conversation_history, system_prompt, Ledger(log=self.usage)).text


def offline_answer(user_query: str, first_query: str, turn: int, rng: random.Random) -> str:
    subject = topic(user_query) if turn == 1 else f"{topic(first_query)} ({user_query[:60]})"
    steps = rng.sample(_STEPS, 3)
    opener = rng.choice(("Here is how I would approach", "Good question about", "Let's work through"))
    body = " ".join(f"{i}) {s}" for i, s in enumerate(steps, 1))
    return f"{opener} {subject}: {body} (offline template answer, turn {turn})"
