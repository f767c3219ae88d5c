"""The conversation record: messages and the interaction that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Message:
    """One message. For user turns, `content` is what the assistant saw (noisy when noised)."""

    role: str
    content: str
    timestamp: str = field(default_factory=now_iso)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content, "timestamp": self.timestamp,
                "metadata": dict(self.metadata)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(role=data["role"], content=data["content"], timestamp=data["timestamp"],
                   metadata=dict(data.get("metadata") or {}))


@dataclass
class Interaction:
    interaction_id: str
    persona_id: str
    persona_features: dict[str, str]
    original_query: str
    initial_query: str
    messages: list[Message]
    num_turns: int
    metadata: dict[str, Any] = field(default_factory=dict)
    query_id: str | None = None
    created_at: str = field(default_factory=now_iso)

    def get_trajectory(self) -> list[str]:
        """The user's prompts in order, as the assistant received them."""
        return [m.content for m in self.messages if m.role == "user"]

    def get_full_conversation(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]

    def to_dict(self) -> dict[str, Any]:
        return {
            "interaction_id": self.interaction_id,
            "persona_id": self.persona_id,
            "persona_features": dict(self.persona_features),
            "original_query": self.original_query,
            "initial_query": self.initial_query,
            "messages": [m.to_dict() for m in self.messages],
            "num_turns": self.num_turns,
            "metadata": dict(self.metadata),
            "query_id": self.query_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Interaction:
        return cls(
            interaction_id=data["interaction_id"],
            persona_id=data["persona_id"],
            persona_features=dict(data["persona_features"]),
            original_query=data["original_query"],
            initial_query=data["initial_query"],
            messages=[Message.from_dict(m) for m in data["messages"]],
            num_turns=data["num_turns"],
            metadata=dict(data.get("metadata") or {}),
            query_id=data.get("query_id"),
            created_at=data.get("created_at") or now_iso(),
        )
