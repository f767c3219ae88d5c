"""What noise injection returns: the clean and noisy text and how one became the other."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class NoiseResult:
    original_text: str
    noisy_text: str
    layer: str | None = None
    layer_index: int | None = None
    applied_strategies: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    semantics: dict[str, Any] | None = None

    @property
    def was_noised(self) -> bool:
        return self.noisy_text != self.original_text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def clean(cls, text: str, **metadata: Any) -> NoiseResult:
        """The result for a turn left as it was (not activated, or a fallback)."""
        return cls(original_text=text, noisy_text=text, metadata=dict(metadata))


@dataclass
class NoisyVersion:
    """One noisy variant of a query, as kept in a training sample's `noisy_initial_queries`."""

    text: str
    layer: str | None
    applied_strategies: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_result(cls, result: NoiseResult) -> NoisyVersion:
        return cls(result.noisy_text, result.layer, list(result.applied_strategies))
