"""The typed records of the pipeline, one per stage: what a pair becomes on its way to the dataset.

Pair -> Plan (style transfer, target length) -> Message/NoiseResult per turn -> Interaction, or
Failure. Every LLM call a pair paid for is a `Usage`, and every reply that broke its role's
contract a `Violation`, carried by the record they belong to, so a stored interaction knows its
own cost and flaws. Rows for Parquet are made from these in `personasim.dataset.rows`; the
reference API's `metadata` dicts are views built from the fields.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from personasim.judgement import Score, Verdict
from personasim.record_base import Record, known, metadata_facts, now_iso, plain, usage_totals

JSON = Any  # a JSON value (pair metadata given by the user)
Role = Literal["user", "assistant"]
Termination = Literal["satisfied", "target_reached", "max_turns", "contract_failure", "context_limit"]
Stage = Literal["formulation", "style_transfer", "noise", "turn_loop", "store"]


@dataclass(frozen=True)
class Pair(Record):
    """One persona with one query: the unit of work."""

    persona_id: str
    persona_features: Mapping[str, str]
    original_query: str
    adapted_query: str | None = None
    query_id: str | None = None
    target_turns: int | None = None
    system_prompt: str | None = None
    metadata: Mapping[str, JSON] = field(default_factory=dict)
    source: str = ""

    @property
    def query_key(self) -> str:
        """query_id when given, else a hash of the query text: stable across reruns."""
        if self.query_id:
            return self.query_id
        return "q" + hashlib.sha256(self.original_query.encode("utf-8")).hexdigest()[:16]



@dataclass(frozen=True)
class Usage(Record):
    """One LLM call that returned: who asked, which model answered, what it cost in tokens."""

    module: str
    operation: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    interaction_id: str | None = None
    created_at: str = field(default_factory=now_iso)
    persona_id: str | None = None  # a call made for a persona (its system prompt), not for a pair
    cached_tokens: int = 0  # of input_tokens, those the provider served from its prompt cache
    batch: bool = False  # answered through a provider's batch API (priced at its discount)


    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        return cls(**known(cls, data))


@dataclass(frozen=True)
class Violation(Record):
    """A reply that broke its role's contract: which role, why, and whether a repair fixed it
    (a mechanical clean-up, or the reply asked for again with the reason stated)."""

    role: str
    reason: str
    detail: str = ""
    repaired: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Violation:
        return cls(**known(cls, data))


@dataclass(frozen=True)
class Semantics(Record):
    """Intent and slots of a user message: what the semantic layers keep, blur or confuse."""

    intent: str
    slots: Mapping[str, JSON] = field(default_factory=dict)
    confidence: float | None = None
    fallback_reason: str | None = None


    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Semantics:
        return cls(**{**known(cls, data), "slots": dict(data.get("slots") or {})})


@dataclass(frozen=True)
class NoiseResult(Record):
    """What the distractor did to one user turn: clean and noisy text, and how one became the other.

    `activated`: the turn was drawn for noise. A drawn turn can still come back clean: then
    `fallback_reason` says why (the model never gave a valid rewrite, no strategy applied).
    """

    original_text: str
    noisy_text: str
    layer: str | None = None
    layer_index: int | None = None
    applied_strategies: tuple[str, ...] = ()
    activated: bool = False
    requested_strategies: tuple[str, ...] = ()
    fallback_reason: str | None = None
    errors: tuple[str, ...] = ()
    semantics: Semantics | None = None

    @property
    def was_noised(self) -> bool:
        return self.noisy_text != self.original_text

    @property
    def metadata(self) -> dict[str, Any]:
        """The reference API's view: how the result came about, beside the texts."""
        view: dict[str, Any] = {"activated": self.activated}
        if self.requested_strategies:
            view["requested_strategies"] = list(self.requested_strategies)
        if self.fallback_reason:
            view["fallback_reason"] = self.fallback_reason
        if self.errors:
            view["errors"] = list(self.errors)
        if self.semantics is not None and self.semantics.fallback_reason:
            view["semantics_fallback_reason"] = self.semantics.fallback_reason
        return view

    @classmethod
    def clean(cls, text: str, *, activated: bool = False, fallback_reason: str | None = None) -> NoiseResult:
        """The result for a turn left as it was (not drawn, or a fallback)."""
        return cls(text, text, activated=activated, fallback_reason=fallback_reason)


    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseResult:
        merged = {**known(cls, data.get("metadata") or {}), **known(cls, data)}  # metadata: older stores
        semantics = merged.get("semantics")
        return cls(**{**merged, "activated": bool(merged.get("activated")),
                      "applied_strategies": tuple(merged.get("applied_strategies") or ()),
                      "requested_strategies": tuple(merged.get("requested_strategies") or ()),
                      "errors": tuple(merged.get("errors") or ()),
                      "semantics": Semantics.from_dict(semantics) if semantics else None})


@dataclass(frozen=True)
class NoisyVersion(Record):
    """One noisy variant of a query, as kept in a training sample's `noisy_initial_queries`."""

    text: str
    layer: str | None
    applied_strategies: tuple[str, ...]


    @classmethod
    def from_result(cls, result: NoiseResult) -> NoisyVersion:
        return cls(result.noisy_text, result.layer, result.applied_strategies)


_MESSAGE_FACTS = ("turn", "clean_text", "noise", "model", "provider", "finish_reason", "truncated", "verdicts")


@dataclass(frozen=True, init=False)
class Message(Record):
    """One message. For user turns `content` is what the assistant saw (noisy when noised),
    `clean_text` what the persona meant and `verdicts` what the gate said of each draft; assistant
    turns name the model that wrote them, why its reply ended, and whether it was cut at the limit.

    `Message(role, content, timestamp, metadata)` (the reference API's form) fills the fields
    from the metadata dict.
    """

    role: Role
    content: str
    timestamp: str
    turn: int
    clean_text: str | None
    noise: NoiseResult | None
    model: str | None
    provider: str | None
    finish_reason: str | None
    truncated: bool
    verdicts: tuple[Verdict, ...]

    def __init__(self, role: Role, content: str, timestamp: str | None = None,
                 metadata: Mapping[str, Any] | None = None, **given: Any) -> None:
        unknown = sorted(set(given) - set(_MESSAGE_FACTS))
        if unknown:
            raise TypeError(f"Message() got an unexpected keyword argument {unknown[0]!r}")
        facts = {**metadata_facts(metadata, _MESSAGE_FACTS, ("is_initial", "is_followup", "was_noised"), "Message"),
                 **{k: v for k, v in given.items() if v is not None}}
        noise = facts.get("noise")
        set_ = object.__setattr__
        set_(self, "role", role)
        set_(self, "content", content)
        set_(self, "timestamp", timestamp or now_iso())
        set_(self, "turn", int(facts.get("turn") or 1))
        for name in ("clean_text", "model", "provider", "finish_reason"):
            set_(self, name, facts.get(name))
        set_(self, "noise", NoiseResult.from_dict(noise) if isinstance(noise, Mapping) else noise)
        set_(self, "truncated", bool(facts.get("truncated")))
        set_(self, "verdicts", tuple(v if isinstance(v, Verdict) else Verdict.from_dict(v)
                                     for v in facts.get("verdicts") or ()))

    @property
    def was_noised(self) -> bool:
        return self.noise is not None and self.noise.was_noised

    @property
    def metadata(self) -> dict[str, Any]:
        """The reference API's view (turn, model, provider, is_initial / is_followup, was_noised, clean text)."""
        if self.role == "assistant":
            return {"turn": self.turn, "model": self.model, "provider": self.provider,
                    "finish_reason": self.finish_reason, "truncated": self.truncated}
        return {"turn": self.turn, "is_initial": self.turn == 1, "is_followup": self.turn > 1,
                "was_noised": self.was_noised, "clean_text": self.clean_text,
                "noise": self.noise.to_dict() if self.noise is not None and self.noise.activated else None,
                **({"verdicts": plain(self.verdicts)} if self.verdicts else {})}


    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        return cls(data["role"], data["content"], data["timestamp"], data.get("metadata"),  # metadata: older stores
                   **{k: data[k] for k in _MESSAGE_FACTS if data.get(k) is not None})


@dataclass(frozen=True)
class Plan(Record):
    """What is decided before the conversation starts."""

    pair: Pair
    interaction_id: str
    initial_query: str
    style_transferred: bool
    target_turns: int
    style_transfer_fallback: str | None = None  # why the original query was kept after a broken rewrite
    verdicts: tuple[Verdict, ...] = ()  # what the gate said of each draft of the rewrite


_INTERACTION_FACTS = ("target_turns", "termination_reason", "style_transferred", "style_transfer_fallback",
                      "system_prompt", "assistant_model", "assistant_provider", "config_fingerprint", "seed",
                      "pair_metadata")


@dataclass(frozen=True, init=False)
class Interaction(Record):
    """A complete multi-turn conversation for one pair, with everything that shaped it, what it cost
    and every contract violation on the way (repaired or flagged).

    The reference API's positional form `Interaction(id, persona_id, features, original, initial,
    messages, num_turns, metadata)` fills the fields from the metadata dict.
    """

    interaction_id: str
    persona_id: str
    persona_features: Mapping[str, str]
    original_query: str
    initial_query: str
    messages: list[Message]
    num_turns: int
    query_id: str | None
    created_at: str
    target_turns: int | None
    termination_reason: Termination | None
    style_transferred: bool
    style_transfer_fallback: str | None
    system_prompt: str | None
    assistant_model: str | None
    assistant_provider: str | None
    config_fingerprint: str | None
    seed: int | None
    pair_metadata: Mapping[str, JSON]
    usage: tuple[Usage, ...]
    violations: tuple[Violation, ...]
    scores: tuple[Score, ...]

    def __init__(self, interaction_id: str, persona_id: str, persona_features: Mapping[str, str],
                 original_query: str, initial_query: str, messages: list[Message], num_turns: int,
                 metadata: Mapping[str, Any] | None = None, *, query_id: str | None = None,
                 created_at: str | None = None, usage: tuple[Usage, ...] = (),
                 violations: tuple[Violation, ...] = (), scores: tuple[Score, ...] = (), **given: Any) -> None:
        unknown = sorted(set(given) - set(_INTERACTION_FACTS))
        if unknown:
            raise TypeError(f"Interaction() got an unexpected keyword argument {unknown[0]!r}")
        facts = dict(metadata or {})
        if "stop_reason" in facts:  # the name before contract failures ended conversations too
            facts.setdefault("termination_reason", facts.pop("stop_reason"))
        facts = {**metadata_facts(facts, _INTERACTION_FACTS, ("noise", "token_usage", "violations", "scores"),
                                  "Interaction"),
                 **given}
        set_ = object.__setattr__
        for name, value in (("interaction_id", interaction_id), ("persona_id", persona_id),
                            ("persona_features", persona_features), ("original_query", original_query),
                            ("initial_query", initial_query), ("messages", messages), ("num_turns", num_turns),
                            ("query_id", query_id), ("created_at", created_at or now_iso()), ("usage", usage),
                            ("violations", violations), ("scores", scores)):
            set_(self, name, value)
        for name in _INTERACTION_FACTS:
            set_(self, name, facts.get(name))
        set_(self, "style_transferred", bool(facts.get("style_transferred")))
        set_(self, "pair_metadata", dict(facts.get("pair_metadata") or {}))

    def get_trajectory(self) -> list[str]:
        """The user's prompts in order, as the assistant received them."""
        return [m.content for m in self.messages if m.role == "user"]

    def get_full_conversation(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]

    @property
    def noise(self) -> list[NoiseResult]:
        """The distractor's result for each user turn that has one."""
        return [m.noise for m in self.messages if m.role == "user" and m.noise is not None]

    @property
    def user_turns(self) -> int:
        return sum(1 for m in self.messages if m.role == "user")

    @property
    def noised_turns(self) -> int:
        return sum(1 for m in self.messages if m.was_noised)

    @property
    def noise_fallbacks(self) -> list[str]:
        """Why each turn drawn for noise came back clean."""
        return [n.fallback_reason for n in self.noise if n.activated and n.fallback_reason]

    @property
    def truncated_turns(self) -> int:
        return sum(1 for m in self.messages if m.truncated)

    @property
    def metadata(self) -> dict[str, Any]:
        """The reference API's view of the facts beside the messages."""
        noised = [n for n in self.noise if n.was_noised]
        return {
            **{name: plain(getattr(self, name)) for name in _INTERACTION_FACTS},
            "noise": {"user_turns": self.user_turns, "noised_turns": len(noised),
                      "layers": [n.layer for n in noised],
                      "strategies": sorted({s for n in noised for s in n.applied_strategies}),
                      "fallbacks": self.noise_fallbacks},
            "token_usage": usage_totals(self.usage), "violations": plain(self.violations),
            **({"scores": plain(self.scores)} if self.scores else {}),
        }


    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interaction:
        """From `to_dict`'s output, or an older store's layout (facts in a `metadata` dict)."""
        older = data.get("stop_reason")
        given = {name: data[name] for name in _INTERACTION_FACTS if data.get(name) is not None}
        if older and "termination_reason" not in given:
            given["termination_reason"] = older
        return cls(
            data["interaction_id"], data["persona_id"], dict(data["persona_features"]), data["original_query"],
            data["initial_query"], [Message.from_dict(m) for m in data["messages"]], data["num_turns"],
            data.get("metadata"), query_id=data.get("query_id"), created_at=data.get("created_at"),
            usage=tuple(Usage.from_dict(u) for u in data.get("usage") or ()),
            violations=tuple(Violation.from_dict(v) for v in data.get("violations") or ()),
            scores=tuple(Score.from_dict(s) for s in data.get("scores") or ()), **given,
        )


@dataclass(frozen=True)
class Failure(Record):
    """A pair that produced no interaction: where it stopped, why, after how many attempts, and the
    calls it paid for on the way."""

    interaction_id: str
    persona_id: str
    query_id: str | None
    original_query: str
    source: str
    stage: Stage
    reason: str
    attempts: int
    permanent: bool = False
    usage: tuple[Usage, ...] = ()
    violations: tuple[Violation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The failure without its usage and violations (they have tables of their own)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("usage", "violations")}


Outcome = Interaction | Failure

__all__ = ["Failure", "Interaction", "Message", "NoiseResult", "NoisyVersion", "Outcome", "Pair", "Plan",
           "Record", "Semantics", "Usage", "Violation", "now_iso", "usage_totals"]
