"""The persona record: who a simulated user is, and the system prompt its assistant works with."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from personasim.record_base import Record
from personasim.records import Usage, Violation

PromptSource = Literal["input", "formulated", "fallback", "none"]


def persona_id_for(features: Mapping[str, str]) -> str:
    """A stable id from the features alone: the same persona has the same id in every run."""
    canonical = json.dumps(dict(features), sort_keys=True, ensure_ascii=False)
    return "persona_" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Persona(Record):
    """A persona, its place in the sample (`index`), and its system prompt with where it came from:
    the input, the formulator, or (`fallback`, with the reason) the features rendered by rule."""

    persona_id: str
    features: Mapping[str, str]
    index: int
    system_prompt: str | None = None
    prompt_source: PromptSource | None = None
    prompt_fallback: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    usage: tuple[Usage, ...] = ()
    violations: tuple[Violation, ...] = ()

    @classmethod
    def sampled(cls, features: Mapping[str, str], index: int) -> Persona:
        return cls(persona_id_for(features), dict(features), index)

    @property
    def has_prompt(self) -> bool:
        return self.prompt_source is not None

    def with_prompt(self, prompt: str | None, source: PromptSource, fallback: str | None = None, *,
                    usage: tuple[Usage, ...] = (), violations: tuple[Violation, ...] = ()) -> Persona:
        return replace(self, system_prompt=prompt, prompt_source=source, prompt_fallback=fallback, usage=usage,
                       violations=violations)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Persona:
        return cls(data["persona_id"], dict(data["features"]), int(data["index"]), data.get("system_prompt"),
                   data.get("prompt_source"), data.get("prompt_fallback"), dict(data.get("metadata") or {}),
                   tuple(Usage.from_dict(u) for u in data.get("usage") or ()),
                   tuple(Violation.from_dict(v) for v in data.get("violations") or ()))


@dataclass(frozen=True)
class FormulationFailure:
    """A persona whose formulator call failed (after its retries, or at once for a permanent error):
    its pairs fail with the reason this run, and the next run asks again."""

    persona: Persona
    reason: str
    permanent: bool
    usage: tuple[Usage, ...] = ()


Formulated = Persona | FormulationFailure
