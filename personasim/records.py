"""The typed records of the pipeline, one per stage: what a pair becomes on its way to the dataset.

Pair -> Plan (style transfer, target length) -> Message/NoiseResult per turn -> Interaction, or
Failure. Every LLM call a pair paid for is a `Usage` carried by the record it paid for, so a
stored interaction knows its own cost. Rows for Parquet are made from these in
`personasim.dataset.rows`; the reference API's `metadata` dicts are views built from the fields.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Literal

JSON = Any  # a JSON value (pair metadata given by the user)
Role = Literal["user", "assistant"]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass(frozen=True)
class Pair:
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Usage:
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class Semantics:
    """Intent and slots of a user message: what the semantic layers keep, blur or confuse."""

    intent: str
    slots: Mapping[str, JSON] = field(default_factory=dict)
    confidence: float | None = None
    fallback_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "slots": dict(self.slots)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Semantics:
        return cls(data["intent"], dict(data.get("slots") or {}), data.get("confidence"),
                   data.get("fallback_reason"))


@dataclass(frozen=True)
class NoiseResult:
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

    def to_dict(self) -> dict[str, Any]:
        return {"original_text": self.original_text, "noisy_text": self.noisy_text, "layer": self.layer,
                "layer_index": self.layer_index, "applied_strategies": list(self.applied_strategies),
                "activated": self.activated, "requested_strategies": list(self.requested_strategies),
                "fallback_reason": self.fallback_reason, "errors": list(self.errors),
                "semantics": self.semantics.to_dict() if self.semantics else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseResult:
        semantics = data.get("semantics")
        older = data.get("metadata") or {}  # stores written before these were fields
        return cls(data["original_text"], data["noisy_text"], data.get("layer"), data.get("layer_index"),
                   tuple(data.get("applied_strategies") or ()), bool(data.get("activated", older.get("activated"))),
                   tuple(data.get("requested_strategies") or older.get("requested_strategies") or ()),
                   data.get("fallback_reason", older.get("fallback_reason")),
                   tuple(data.get("errors") or older.get("errors") or ()),
                   Semantics.from_dict(semantics) if semantics else None)


@dataclass(frozen=True)
class NoisyVersion:
    """One noisy variant of a query, as kept in a training sample's `noisy_initial_queries`."""

    text: str
    layer: str | None
    applied_strategies: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "layer": self.layer, "applied_strategies": list(self.applied_strategies)}

    @classmethod
    def from_result(cls, result: NoiseResult) -> NoisyVersion:
        return cls(result.noisy_text, result.layer, result.applied_strategies)


def _facts(metadata: Mapping[str, Any] | None, known: tuple[str, ...], derived: tuple[str, ...],
           what: str) -> dict[str, Any]:
    """The reference API's metadata dict, as the typed fields it names; a key with no field is an error."""
    facts = dict(metadata or {})
    unknown = sorted(set(facts) - set(known) - set(derived))
    if unknown:
        raise ValueError(f"{what} metadata key {unknown[0]!r} has no field; known: {', '.join(known)}")
    return {k: v for k, v in facts.items() if k in known}


@dataclass(frozen=True, init=False)
class Message:
    """One message. For user turns `content` is what the assistant saw (noisy when noised) and
    `clean_text` what the persona meant; assistant turns name the model that wrote them.

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

    def __init__(self, role: Role, content: str, timestamp: str | None = None,
                 metadata: Mapping[str, Any] | None = None, *, turn: int | None = None,
                 clean_text: str | None = None, noise: NoiseResult | None = None, model: str | None = None,
                 provider: str | None = None) -> None:
        facts = _facts(metadata, ("turn", "clean_text", "noise", "model", "provider"),
                       ("is_initial", "is_followup", "was_noised"), "Message")
        given_noise = facts.get("noise")
        set_ = object.__setattr__
        set_(self, "role", role)
        set_(self, "content", content)
        set_(self, "timestamp", timestamp or now_iso())
        set_(self, "turn", int(turn if turn is not None else facts.get("turn", 1)))
        set_(self, "clean_text", clean_text if clean_text is not None else facts.get("clean_text"))
        set_(self, "noise", noise or (NoiseResult.from_dict(given_noise) if given_noise else None))
        set_(self, "model", model or facts.get("model"))
        set_(self, "provider", provider or facts.get("provider"))

    @property
    def was_noised(self) -> bool:
        return self.noise is not None and self.noise.was_noised

    @property
    def metadata(self) -> dict[str, Any]:
        """The reference API's view (turn, model, provider, is_initial / is_followup, was_noised, clean text)."""
        if self.role == "assistant":
            return {"turn": self.turn, "model": self.model, "provider": self.provider}
        return {"turn": self.turn, "is_initial": self.turn == 1, "is_followup": self.turn > 1,
                "was_noised": self.was_noised, "clean_text": self.clean_text,
                "noise": self.noise.to_dict() if self.noise is not None and self.noise.activated else None}

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content, "timestamp": self.timestamp, "turn": self.turn,
                "clean_text": self.clean_text, "noise": self.noise.to_dict() if self.noise else None,
                "model": self.model, "provider": self.provider}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        noise = data.get("noise")
        return cls(data["role"], data["content"], data["timestamp"], data.get("metadata"),  # metadata: older stores
                   turn=data.get("turn"), clean_text=data.get("clean_text"),
                   noise=NoiseResult.from_dict(noise) if noise else None, model=data.get("model"),
                   provider=data.get("provider"))


@dataclass(frozen=True)
class Plan:
    """What is decided before the conversation starts."""

    pair: Pair
    interaction_id: str
    initial_query: str
    style_transferred: bool
    target_turns: int


StopReason = Literal["satisfied", "target_reached"]


_INTERACTION_FACTS = ("target_turns", "stop_reason", "style_transferred", "system_prompt", "assistant_model",
                      "assistant_provider", "config_fingerprint", "seed", "pair_metadata")


@dataclass(frozen=True, init=False)
class Interaction:
    """A complete multi-turn conversation for one pair, with everything that shaped it and what it cost.

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
    stop_reason: StopReason | None
    style_transferred: bool
    system_prompt: str | None
    assistant_model: str | None
    assistant_provider: str | None
    config_fingerprint: str | None
    seed: int | None
    pair_metadata: Mapping[str, JSON]
    usage: tuple[Usage, ...]

    def __init__(self, interaction_id: str, persona_id: str, persona_features: Mapping[str, str],
                 original_query: str, initial_query: str, messages: list[Message], num_turns: int,
                 metadata: Mapping[str, Any] | None = None, *, query_id: str | None = None,
                 created_at: str | None = None, usage: tuple[Usage, ...] = (), **fields: Any) -> None:
        unknown = sorted(set(fields) - set(_INTERACTION_FACTS))
        if unknown:
            raise TypeError(f"Interaction() got an unexpected keyword argument {unknown[0]!r}")
        facts = {**_facts(metadata, _INTERACTION_FACTS, ("noise", "token_usage"), "Interaction"), **fields}
        set_ = object.__setattr__
        for name, value in (("interaction_id", interaction_id), ("persona_id", persona_id),
                            ("persona_features", persona_features), ("original_query", original_query),
                            ("initial_query", initial_query), ("messages", messages), ("num_turns", num_turns),
                            ("query_id", query_id), ("created_at", created_at or now_iso()), ("usage", usage)):
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
    def metadata(self) -> dict[str, Any]:
        """The reference API's view of the facts beside the messages."""
        noised = [n for n in self.noise if n.was_noised]
        return {
            "assistant_model": self.assistant_model, "assistant_provider": self.assistant_provider,
            "target_turns": self.target_turns, "stop_reason": self.stop_reason,
            "style_transferred": self.style_transferred, "system_prompt": self.system_prompt,
            "noise": {"user_turns": self.user_turns, "noised_turns": len(noised),
                      "layers": [n.layer for n in noised],
                      "strategies": sorted({s for n in noised for s in n.applied_strategies}),
                      "fallbacks": [n.fallback_reason for n in self.noise if n.fallback_reason]},
            "token_usage": usage_totals(self.usage),
            "config_fingerprint": self.config_fingerprint, "seed": self.seed,
            "pair_metadata": dict(self.pair_metadata),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "interaction_id": self.interaction_id, "persona_id": self.persona_id,
            "persona_features": dict(self.persona_features), "original_query": self.original_query,
            "initial_query": self.initial_query, "messages": [m.to_dict() for m in self.messages],
            "num_turns": self.num_turns, "query_id": self.query_id, "created_at": self.created_at,
            "target_turns": self.target_turns, "stop_reason": self.stop_reason,
            "style_transferred": self.style_transferred, "system_prompt": self.system_prompt,
            "assistant_model": self.assistant_model, "assistant_provider": self.assistant_provider,
            "config_fingerprint": self.config_fingerprint, "seed": self.seed,
            "pair_metadata": dict(self.pair_metadata), "usage": [u.to_dict() for u in self.usage],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interaction:
        """From `to_dict`'s output, or an older store's layout (facts in a `metadata` dict)."""
        return cls(
            data["interaction_id"], data["persona_id"], dict(data["persona_features"]), data["original_query"],
            data["initial_query"], [Message.from_dict(m) for m in data["messages"]], data["num_turns"],
            data.get("metadata"), query_id=data.get("query_id"), created_at=data.get("created_at"),
            usage=tuple(Usage.from_dict(u) for u in data.get("usage") or ()),
            **{name: data[name] for name in _INTERACTION_FACTS if data.get(name) is not None},
        )


Stage = Literal["style_transfer", "noise", "turn_loop", "store"]


@dataclass(frozen=True)
class Failure:
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

    def to_dict(self) -> dict[str, Any]:
        """The failure without its usage (that goes to the token_usage table)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "usage"}


Outcome = Interaction | Failure


def usage_totals(records: Iterable[Usage]) -> dict[str, int]:
    """Calls and tokens of some usage records."""
    totals = {"calls": 0, "input_tokens": 0, "output_tokens": 0}
    for rec in records:
        totals["calls"] += 1
        totals["input_tokens"] += rec.input_tokens
        totals["output_tokens"] += rec.output_tokens
    return totals
