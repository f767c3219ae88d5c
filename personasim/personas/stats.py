"""What a set of personas looks like: how far apart they are (Hamming distance: the minimum,
searched without comparing every pair, and the exact mean), how each dimension's values are
spread against the bank's target shares, and where their system prompts came from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from personasim.config.personas import SamplingSettings
from personasim.personas.bank import PersonaBank
from personasim.personas.diversity import Codes, mean_distance, min_distance


def encode(features: Sequence[Mapping[str, str]]) -> tuple[list[Codes], list[int]]:
    """Personas as value codes over every dimension any of them has (absent: -1), and each
    dimension's number of codes."""
    names = sorted({name for f in features for name in f})
    values: list[dict[str, int]] = [{} for _ in names]
    codes = [tuple(values[i].setdefault(f[n], len(values[i])) if n in f else -1 for i, n in enumerate(names))
             for f in features]
    return codes, [len(v) + 1 for v in values]


def distances(features: Sequence[Mapping[str, str]], at_least: int = 1, search: int = 2) -> dict[str, Any]:
    """The smallest Hamming distance between two personas (exact when it is below `at_least` +
    `search`, else the bound it is at least, `min_exact` false) and the mean over all pairs."""
    codes, sizes = encode(features)
    cap = max(1, at_least) + search - 1
    nearest = min_distance(codes, sizes, cap=cap)
    mean = mean_distance(codes)
    return {"min": nearest, "min_exact": nearest is None or nearest <= cap,
            "mean": None if mean is None else round(mean, 3)}


def targets(bank: PersonaBank, settings: SamplingSettings) -> dict[str, dict[str, float]]:
    """Each dimension's target value shares: the bank's weights under the weighted strategy, equal
    shares under random and stratified."""
    weighted = settings.strategy == "weighted"
    return {d.name: {v: round(s, 4) for v, s in (d.target() if weighted else
                                                 {v: 1 / len(d.values) for v in d.values}).items()}
            for d in bank.dimensions}


def coverage(features: Sequence[Mapping[str, str]], wanted: Mapping[str, Mapping[str, float]] | None = None
             ) -> dict[str, dict[str, Any]]:
    """Per dimension: the share of personas that have it, each value's share of those (beside its
    target, when known) and the largest gap to a target."""
    out: dict[str, dict[str, Any]] = {}
    total = len(features)
    names = list(wanted) if wanted else sorted({n for f in features for n in f})
    for name in names:
        counts = Counter(f[name] for f in features if name in f)
        have = sum(counts.values())
        target = dict((wanted or {}).get(name, {}))
        values = {v: {"share": round(counts.get(v, 0) / have, 4) if have else 0.0,
                      **({"target": target[v]} if v in target else {})}
                  for v in [*target, *sorted(set(counts) - set(target))]}
        gaps = [abs(entry["share"] - entry["target"]) for entry in values.values() if "target" in entry]
        out[name] = {"present": round(have / total, 4) if total else 0.0, "values": values,
                     **({"max_gap": round(max(gaps), 4)} if gaps and have else {})}
    return out


def prompt_sources(sources: Iterable[str | None], fallbacks: Iterable[str | None]) -> dict[str, Any]:
    """How the personas' system prompts came about, and why the fallbacks were used."""
    reasons = Counter(str(r).split(":")[0] for r in fallbacks if r)
    return {"sources": dict(sorted(Counter(s or "none" for s in sources).items())),
            "fallback_reasons": dict(reasons.most_common(10))}
