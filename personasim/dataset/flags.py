"""What flags a conversation for a second look: a reply cut at the token limit, a fallback (a
rewrite or a noised turn that kept the clean text), a reply that broke its role's contract. The
report filters by them and an export can leave them out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FLAGS = ("truncated", "fallback", "violation")
COLUMNS = ["truncated_turns", "style_transfer_fallback", "noise_fallbacks", "violations"]  # of `interactions`


def flags(row: Mapping[str, Any]) -> list[str]:
    """The flags of an `interactions` row (it needs COLUMNS)."""
    marks = {"truncated": bool(row["truncated_turns"]),
             "fallback": bool(row["style_transfer_fallback"] or row["noise_fallbacks"]),
             "violation": bool(row["violations"])}
    return [flag for flag in FLAGS if marks[flag]]
