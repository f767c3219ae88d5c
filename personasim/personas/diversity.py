"""Hamming distance between personas without comparing every pair with every pair.

A persona is a tuple of value codes, one per dimension (an absent feature is a value of its own:
PersonaGym counts a feature one persona has and the other lacks as a difference). If two personas
differ in fewer than `d` dimensions and the dimensions are cut into `d` blocks, some block holds no
difference: they agree on that whole block (the pigeonhole principle). So each persona is filed
under its `d` block keys, and a new one is compared only with those sharing a key with it: a
handful, not all of them. Weighted differences (priority dimensions count more) keep this true:
a weighted distance below `d` still means fewer than `d` differing dimensions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

Codes = tuple[int, ...]


def blocks(sizes: Sequence[int], count: int) -> list[list[int]]:
    """`count` blocks of dimension positions, balanced by how much each dimension tells apart
    (the log of its number of values), so that no block's key is shared by most personas."""
    count = max(1, min(count, len(sizes)))
    cut: list[list[int]] = [[] for _ in range(count)]
    load = [0.0] * count
    for position in sorted(range(len(sizes)), key=lambda p: -math.log(max(2, sizes[p]))):
        target = min(range(count), key=lambda b: (load[b], len(cut[b])))
        cut[target].append(position)
        load[target] += math.log(max(2, sizes[position]))
    return [sorted(b) for b in cut]


class HammingIndex:
    """Answers "is this persona closer than `min_distance` to any filed so far?"."""

    def __init__(self, sizes: Sequence[int], min_distance: int, weights: Sequence[float] | None = None) -> None:
        self.min_distance = min_distance
        self.weights = list(weights) if weights and any(w != 1.0 for w in weights) else None
        self.blocks = blocks(sizes, min_distance)
        self.personas: list[Codes] = []
        self._buckets: list[dict[Codes, list[int]]] = [{} for _ in self.blocks]

    def distance(self, a: Codes, b: Codes, limit: float = math.inf) -> float:
        """Weighted Hamming distance, counted only up to `limit`."""
        total = 0.0
        weights = self.weights
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                total += weights[i] if weights else 1.0
                if total >= limit:
                    break
        return total

    def _keys(self, codes: Codes) -> list[Codes]:
        return [tuple(codes[p] for p in block) for block in self.blocks]

    def too_close(self, codes: Codes) -> bool:
        checked: set[int] = set()
        for bucket, key in zip(self._buckets, self._keys(codes), strict=True):
            for other in bucket.get(key, ()):
                if other not in checked:
                    checked.add(other)
                    if self.distance(codes, self.personas[other], self.min_distance) < self.min_distance:
                        return True
        return False

    def add(self, codes: Codes) -> None:
        number = len(self.personas)
        self.personas.append(codes)
        for bucket, key in zip(self._buckets, self._keys(codes), strict=True):
            bucket.setdefault(key, []).append(number)


def min_distance(personas: Sequence[Codes], sizes: Sequence[int], cap: int = 8) -> int | None:
    """The smallest Hamming distance between any two personas (unweighted), searched radius by
    radius with the same blocking; None when fewer than two personas, `cap + 1` when no pair is
    within `cap` of each other."""
    if len(personas) < 2:
        return None
    for radius in range(0, min(cap, len(sizes)) + 1):
        index = HammingIndex(sizes, radius + 1)
        best = math.inf
        for codes in personas:
            for bucket, key in zip(index._buckets, index._keys(codes), strict=True):
                for other in bucket.get(key, ()):
                    best = min(best, index.distance(codes, index.personas[other], best))
            index.add(codes)
        if best <= radius:
            return int(best)
    return cap + 1


def mean_distance(personas: Sequence[Codes]) -> float | None:
    """The mean Hamming distance over all pairs, exactly, from each dimension's value counts: two
    personas drawn at random differ on a dimension unless they share its value."""
    n = len(personas)
    if n < 2:
        return None
    pairs = n * (n - 1)
    total = 0.0
    for values in zip(*personas, strict=True):
        same = sum(c * (c - 1) for c in Counter(values).values())
        total += 1.0 - same / pairs
    return total
