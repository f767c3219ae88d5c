"""The judge: checks a user turn is in character and a rewrite is still the same request (for the
gate), and scores a finished conversation on named 1-5 axes, each with a one-line reason. Every
answer is structured (a JSON schema) and validated; a judge that cannot answer never fails a pair:
its check lets the draft through, recorded as an error, and its scores are left for `personasim
judge` to fill in."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from personasim.config.judging import JudgingSettings
from personasim.judgement import Outcome, Score
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.llm.json_reply import ask_json
from personasim.llm.ledger import Ledger
from personasim.llm.types import Prompt
from personasim.prompts import render
from personasim.roles.persona_text import format_persona

VERDICT_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["verdict", "reason"],
                  "properties": {"verdict": {"type": "string", "enum": ["pass", "fail"]},
                                 "reason": {"type": "string"}}}
ATTEMPTS = 2  # a malformed judge reply is asked for once more


class VerdictAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    verdict: Literal["pass", "fail"]
    reason: str = ""


class AxisAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    score: int = Field(ge=1, le=5)
    reason: str = Field(min_length=1)


class ScoresAnswer(RootModel[dict[str, AxisAnswer]]):
    """One judge's answer: an AxisAnswer per axis."""


def scores_schema(axes: Sequence[str]) -> dict[str, object]:
    axis = {"type": "object", "additionalProperties": False, "required": ["score", "reason"],
            "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}, "reason": {"type": "string"}}}
    return {"type": "object", "additionalProperties": False, "required": list(axes),
            "properties": {name: axis for name in axes}}


def transcript(messages: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"role": role, "content": text} for role, text in messages]


class Judge:
    """One or more judge models (the first checks drafts; every one scores)."""

    def __init__(self, clients: Sequence[LLMClient], settings: JudgingSettings | None = None) -> None:
        if not clients:
            raise ValueError("a judge needs at least one model")
        self.clients = list(clients)
        self.settings = settings or JudgingSettings()

    # -- the gate's checks ----------------------------------------------------------------------
    def check_turn(self, persona: Mapping[str, str], history: Sequence[tuple[str, str]], text: str,
                   ledger: Ledger) -> tuple[Outcome, str]:
        payload: dict[str, object] = {"conversation": transcript(history), "message": text}
        return self._verdict(op.JUDGE_TURN, render("judge.turn", persona=format_persona(persona)), payload, ledger)

    def check_rewrite(self, persona: Mapping[str, str], query: str, rewrite: str, ledger: Ledger
                      ) -> tuple[Outcome, str]:
        payload = {"request": query, "rewrite": rewrite}
        return self._verdict(op.JUDGE_REWRITE, render("judge.rewrite", persona=format_persona(persona)), payload,
                             ledger)

    def _verdict(self, operation: str, system: str, payload: Mapping[str, object], ledger: Ledger
                 ) -> tuple[Outcome, str]:
        prompt = Prompt(operation, [{"role": "system", "content": system},
                                    {"role": "user", "content": json.dumps(payload, ensure_ascii=False)}],
                        offline=lambda rng: json.dumps({"verdict": "pass", "reason": "offline stand-in"}),
                        json_mode=True, schema=VERDICT_SCHEMA, strict=True)
        answer, reason = ask_json(self.clients[0], prompt, VerdictAnswer, ATTEMPTS, ledger, "judge")
        if answer is None:
            return "error", reason or "no answer"
        return answer.verdict, answer.reason

    # -- scores ---------------------------------------------------------------------------------
    def score(self, persona: Mapping[str, str], messages: Sequence[tuple[str, str]], system_prompt: str | None,
              ledger: Ledger, judges: Sequence[int] | None = None) -> tuple[list[Score], list[str]]:
        """Every judge's scores of one conversation (or those of `judges`, by position), and why a
        judge gave none."""
        axes = self.settings.axes
        rubric = "\n".join(f"- {axis}: {self.settings.rubric(axis)}" for axis in axes)
        system = render("judge.conversation", persona=format_persona(persona), axes=rubric)
        payload = {"assistant_system_prompt": system_prompt, "conversation": transcript(messages)}
        prompt = Prompt(op.JUDGE_SCORE, [{"role": "system", "content": system},
                                         {"role": "user", "content": json.dumps(payload, ensure_ascii=False)}],
                        offline=lambda rng: offline_scores(axes, messages, rng), json_mode=True,
                        schema=scores_schema(axes), strict=True)
        scores: list[Score] = []
        missing: list[str] = []
        for index in judges if judges is not None else range(len(self.clients)):
            client = self.clients[index]
            answer, reason = ask_json(client, prompt, ScoresAnswer, ATTEMPTS, ledger, "judge",
                                      lambda a: _every_axis(a, axes))  # a call failed for good: (None, why)
            if answer is None:
                missing.append(f"{client.model}: {reason}")
                continue
            scores += [Score(axis, answer.root[axis].score, answer.root[axis].reason, client.model) for axis in axes]
        return scores, missing


def _every_axis(answer: ScoresAnswer, axes: Sequence[str]) -> tuple[str, str] | None:
    left = [axis for axis in axes if axis not in answer.root]
    return ("schema", f"no score for {', '.join(left)}") if left else None


def offline_scores(axes: Sequence[str], messages: Sequence[tuple[str, str]], rng: random.Random) -> str:
    """Scores by rule for the offline backend (its provider says so): middling, a little varied."""
    turns = sum(1 for role, _ in messages if role == "user")
    return json.dumps({axis: {"score": rng.choice((3, 3, 4)), "reason": f"offline stand-in over {turns} turns"}
                       for axis in axes})
