"""Which conversations an export keeps: those scored at least a minimum on each axis asked for (the
mean of their judges; a conversation with no score on that axis is left out too), and, when
asked, none that is flagged. What was left out, and why, is counted for the dataset card."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from personasim.dataset.flags import COLUMNS, flags
from personasim.dataset.judging_stats import interaction_scores
from personasim.dataset.store import Dataset
from personasim.errors import ConfigError


@dataclass(frozen=True)
class Selection:
    min_scores: Mapping[str, float] = field(default_factory=dict)
    exclude_flagged: bool = False

    @classmethod
    def parse(cls, min_scores: Sequence[str] = (), exclude_flagged: bool = False) -> Selection:
        """From `--min-score AXIS=N` options; a bad one is an error naming it."""
        parsed = {}
        for given in min_scores:
            axis, _, value = given.partition("=")
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(f"--min-score {given}: give AXIS=N, N a score from 1 to 5") from None
            if not axis or not 1 <= number <= 5:
                raise ConfigError(f"--min-score {given}: give AXIS=N, N a score from 1 to 5")
            parsed[axis] = number
        return cls(parsed, exclude_flagged)

    @property
    def active(self) -> bool:
        return bool(self.min_scores) or self.exclude_flagged

    def keep(self, dataset: Dataset) -> tuple[set[str] | None, dict[str, Any]]:
        """The ids of the conversations kept (None: all), and what was left out, by reason."""
        if not self.active:
            return None, {}
        scores = interaction_scores(dataset) if self.min_scores else {}
        known = {axis for axes in scores.values() for axis in axes}
        unknown = sorted(set(self.min_scores) - known)
        if unknown:
            raise ConfigError(f"--min-score {unknown[0]}: no conversation of {dataset.root} has a score on that axis "
                              f"(scored axes: {', '.join(sorted(known)) or 'none: run personasim judge first'})")
        rows = dataset.table("interactions", ["interaction_id", *COLUMNS]).to_pylist()
        left_out: Counter[str] = Counter()
        kept = set()
        for row in rows:
            reason = self._reason(row, scores.get(row["interaction_id"], {}))
            if reason is None:
                kept.add(row["interaction_id"])
            else:
                left_out[reason] += 1
        return kept, {"min_scores": dict(self.min_scores), "exclude_flagged": self.exclude_flagged,
                      "conversations": len(rows), "kept": len(kept), "left_out": dict(sorted(left_out.items()))}

    def _reason(self, row: Mapping[str, Any], scores: Mapping[str, float]) -> str | None:
        for axis, least in self.min_scores.items():
            if axis not in scores:
                return f"no score on {axis}"
            if scores[axis] < least:
                return f"{axis} below {least:g}"
        marked = flags(row) if self.exclude_flagged else []
        return f"flagged: {marked[0]}" if marked else None


def filtering_lines(report: Mapping[str, Any]) -> list[str]:
    """The dataset card's account of the selection."""
    if not report:
        return []
    asked = [f"at least {v:g} on {k}" for k, v in report["min_scores"].items()]
    if report["exclude_flagged"]:
        asked.append("no flag (truncated, fallback, contract violation)")
    return ["## Filtering", "",
            f"Only conversations with {' and '.join(asked)} were exported: {report['kept']:,} of "
            f"{report['conversations']:,} (a conversation's score on an axis is the mean of its judges).", "",
            "| left out because | conversations |", "| --- | --- |",
            *(f"| {reason} | {n:,} |" for reason, n in report["left_out"].items()), ""]
