"""Deterministic randomness: every random choice comes from a stream named by what it decides.

Streams are derived by hashing (seed, pair key, purpose), never from a shared generator, so the
choices for a pair are the same whatever thread runs it and whatever else runs beside it.
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any parts; stable across processes (no `hash()` randomisation)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def stream(*parts: object) -> random.Random:
    """An independent `random.Random` for one purpose, e.g. stream(seed, pair_key, "distractor")."""
    return random.Random(derive_seed(*parts))


def weighted_choice(rng: random.Random, items: list, weights: list[float]):
    """One item by weight; zero-weight items are never chosen."""
    return rng.choices(items, weights=weights, k=1)[0]
