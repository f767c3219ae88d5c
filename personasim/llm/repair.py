"""A bounded repair loop: a reply that breaks its role's contract is asked for again, with the reason.

Each violation met goes on the pair's ledger, marked repaired when a later reply passed; the
roles (personasim.roles.contract) say what the contract is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from personasim.errors import LLMCallError
from personasim.llm.client import LLMClient
from personasim.llm.ledger import Ledger
from personasim.llm.types import Prompt, Reply
from personasim.prompts import render
from personasim.records import Violation


@dataclass
class Checked:
    """A reply after the rule-based clean-up: its text, what was cleaned, and the problem left."""

    text: str
    cleaned: list[str] = field(default_factory=list)
    problem: tuple[str, str] | None = None  # (reason, detail)
    finish_reason: str | None = None

    def fail(self, reason: str, detail: str = "") -> Checked:
        if self.problem is None:
            self.problem = (reason, detail)
        return self


class ContractViolation(LLMCallError):
    """A role's reply broke its contract after every repair: the pair cannot go on with it."""

    def __init__(self, role: str, reason: str, detail: str) -> None:
        super().__init__(f"{role} broke its contract ({reason}): {detail}", permanent=True)
        self.reason = reason


def reask(prompt: Prompt, bad: str, reason: str) -> Prompt:
    """The prompt again, with the bad reply and why it was refused."""
    return replace(prompt, messages=[*prompt.messages, {"role": "assistant", "content": bad},
                                     {"role": "user", "content": render("repair", reason=reason)}])


def ask_checked(client: LLMClient, prompt: Prompt, ledger: Ledger, role: str, rounds: int,
                check: Callable[[Reply], Checked]) -> Checked:
    """The first reply that passes `check`, asking again with the reason up to `rounds` times.

    Returns the last `Checked` either way (its `problem` is None when a reply passed); every
    violation met is on the ledger.
    """
    met: list[tuple[str, str]] = []
    for round_ in range(rounds + 1):
        reply = client.complete(prompt, ledger)
        checked = check(reply)
        checked.finish_reason = reply.finish_reason
        ledger.violations.extend(Violation(role, name, repaired=True) for name in checked.cleaned)
        if checked.problem is None:
            ledger.violations.extend(Violation(role, r, d, repaired=True) for r, d in met)
            return checked
        met.append(checked.problem)
        if round_ < rounds:
            prompt = reask(prompt, reply.text, f"{checked.problem[0]}: {checked.problem[1]}")
    ledger.violations.extend(Violation(role, r, d, repaired=False) for r, d in met)
    return checked
