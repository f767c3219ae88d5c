"""A dataset remembers what made it: the seed and config fingerprint of each variant it holds.

A run with another seed or generation spec would silently put a second conversation beside every
pair's first; it is refused unless asked for as a new variant, which is then partitioned
(`variant=<fingerprint>`) and counted apart in the statistics.
"""

from __future__ import annotations

from typing import Any

from personasim.dataset.store import Dataset
from personasim.errors import ConfigError

IDENTITY = "_dataset.json"


def variants(dataset: Dataset) -> list[dict[str, Any]]:
    """The (fingerprint, seed) of every variant in the dataset, oldest first."""
    known = dataset.read_json(IDENTITY)
    if known is not None:
        return list(known["variants"])
    rows = dataset.table("interactions", ["config_fingerprint", "seed"]).to_pylist()  # made before this file
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(row["config_fingerprint"], {"fingerprint": row["config_fingerprint"], "seed": row["seed"]})
    return list(seen.values())


def check_variant(dataset: Dataset, fingerprint: str, seed: int, *, new_variant: bool = False) -> None:
    """Refuse a run whose seed or spec differs from what the dataset holds, naming both and the way out."""
    held = variants(dataset)
    if not held or new_variant or any(v["fingerprint"] == fingerprint for v in held):
        return
    first = held[0]
    raise ConfigError(
        f"{dataset.root} holds data generated with seed {first['seed']} and config fingerprint "
        f"{first['fingerprint']}; this run has seed {seed} and config fingerprint {fingerprint}. "
        f"Write it to a new --output, or pass --new-variant (new_variant: true) to add it as a variant, "
        f"partitioned and counted apart")


def record_variant(dataset: Dataset, fingerprint: str, seed: int, spec: dict[str, Any] | None = None) -> None:
    """Remember a variant, with the generation spec that made it (no secrets: keys live in the
    connections, which are not part of the spec) for the dataset card."""
    held = variants(dataset)
    same = next((v for v in held if v["fingerprint"] == fingerprint), None)
    if same is not None and ("spec" in same or spec is None):
        return
    entry = {"fingerprint": fingerprint, "seed": seed, **({"spec": spec} if spec is not None else {})}
    # a variant recorded before specs were kept gains its spec in place
    dataset.write_json(IDENTITY, {"variants": [*held, entry] if same is None else
                                  [entry if v is same else v for v in held]})
