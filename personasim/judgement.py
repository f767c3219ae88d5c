"""The records of judging: a gate's verdict on one draft of a user turn or a rewrite, and a judge's
score of a finished conversation on one axis. Kept on the message and the interaction they are
about, so a stored interaction carries its own verdicts and scores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from personasim.record_base import Record, known

Outcome = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class Verdict(Record):
    """What the gate said of draft `attempt` of a turn: its rules (`stage` "rules": the first one
    broken, or none) or the judge's in-character check (`stage` "judge"; "error": the judge could
    not answer, and the draft was let through)."""

    attempt: int
    stage: Literal["rules", "judge"]
    outcome: Outcome
    reason: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(**known(cls, data))


@dataclass(frozen=True)
class Score(Record):
    """One judge's 1-5 score of a conversation on one axis, with its one-line reason."""

    axis: str
    score: int
    reason: str
    judge_model: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Score:
        return cls(**known(cls, data))
