"""The quality section of a dataset's statistics: what a user checks before training on the data.

Diversity (distinct-1/2 of user and assistant turns), near-duplicate conversations (MinHash with
LSH, datasketch), how far rewritten queries moved from their originals, the noise actually
injected against the configured activation probability and layer weights, fallbacks, truncation,
contract violations by role and reason before and after repair, turns and terminations.
"""

from __future__ import annotations

import importlib
import re
import statistics
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from personasim.config import DistractorConfig
from personasim.dataset.figures import Row, markdown
from personasim.dataset.store import Dataset
from personasim.roles.contract import similarity

NEAR_DUPLICATE = 0.8  # Jaccard similarity of word 3-gram sets above which two conversations are near-duplicates
_PERMUTATIONS = 64
_WORD = re.compile(r"\w+")


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


class _Distinct:
    """distinct-1 and distinct-2: unique word uni- and bigrams over all of them, counted as texts
    stream past (bigrams kept as hashes: the counts, not the pairs, are the figure)."""

    def __init__(self) -> None:
        self.unigrams: set[str] = set()
        self.bigrams: set[int] = set()
        self.words = 0
        self.pairs = 0

    def add(self, words: list[str]) -> None:
        self.unigrams.update(words)
        self.bigrams.update(hash(pair) for pair in zip(words, words[1:], strict=False))
        self.words += len(words)
        self.pairs += max(0, len(words) - 1)

    def rates(self) -> dict[str, float]:
        return {"distinct_1": _rate(len(self.unigrams), self.words), "distinct_2": _rate(len(self.bigrams), self.pairs)}


PRELOADED = ("pyarrow.dataset", "datasketch")  # the tables' reader (pandas under it), the near-duplicate check's


def preload() -> None:
    """Import what the statistics at the end read with (pyarrow.dataset with pandas, datasketch with
    scipy: a second together) in the background, so a run pays for it while its calls are in flight
    (or while the embedded API boots) rather than after the last one. The command line calls it
    while the embedded API boots, the flow again for deployment runs: once imported, nothing to do."""
    if all(name in sys.modules for name in PRELOADED):
        return
    threading.Thread(target=lambda: [importlib.import_module(name) for name in PRELOADED], name="personasim-preload",
                     daemon=True).start()


class _NearDuplicates:
    """One MinHash of word 3-grams per conversation (3-grams within a message), updated a batch of
    messages at a time, so no conversation's text is held; the permutations are shared by every sketch."""

    def __init__(self) -> None:
        from datasketch import MinHash  # half a second of imports (scipy): only when statistics are made

        self._minhash = MinHash
        first = MinHash(num_perm=_PERMUTATIONS)
        self._permutations, self._scheme = first.permutations, first.scheme
        self.sketches: dict[str, Any] = {}

    def add(self, conversation: str, shingles: list[bytes]) -> None:
        sketch = self.sketches.get(conversation)
        if sketch is None:
            sketch = self.sketches[conversation] = self._minhash(
                num_perm=_PERMUTATIONS, permutations=self._permutations, scheme=self._scheme)
        sketch.update_batch(shingles)

    def rate(self) -> float:
        """The share of conversations with at least one other above NEAR_DUPLICATE (an LSH estimate)."""
        from datasketch import MinHashLSH

        lsh = MinHashLSH(threshold=NEAR_DUPLICATE, num_perm=_PERMUTATIONS)
        for key, sketch in self.sketches.items():
            lsh.insert(key, sketch)
        duplicated = sum(1 for sketch in self.sketches.values() if len(lsh.query(sketch)) > 1)
        return _rate(duplicated, len(self.sketches))


def _violations(rows: Iterable[list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, int]]]:
    before: dict[str, Counter[str]] = {}
    after: dict[str, Counter[str]] = {}
    for violations in rows:
        for v in violations or []:
            before.setdefault(v["role"], Counter())[v["reason"]] += 1
            if not v["repaired"]:
                after.setdefault(v["role"], Counter())[v["reason"]] += 1
    return {"before_repair": {role: dict(c) for role, c in sorted(before.items())},
            "after_repair": {role: dict(c) for role, c in sorted(after.items())}}


def _layer_mix(layers: Counter[str], distractor: DistractorConfig | None) -> dict[str, Any]:
    total = sum(layers.values())
    share = {layer: _rate(n, total) for layer, n in sorted(layers.items())}
    mix: dict[str, Any] = {"counts": dict(sorted(layers.items())), "share": share}
    if distractor is not None and distractor.type == "semantic":
        weights = distractor.semantic.layer_weights
        configured = {layer: round(w / sum(weights.values()), 4) for layer, w in sorted(weights.items())}
        mix["configured"] = configured
        mix["difference"] = {layer: round(share.get(layer, 0.0) - w, 4) for layer, w in configured.items()}
    return mix


INTERACTION_COLUMNS = ("original_query", "initial_query", "style_transferred", "style_transfer_fallback",
                       "termination_reason", "violations")


class _MessageTally:
    """What the quality section needs from the messages, gathered a batch at a time."""

    def __init__(self) -> None:
        self.diversity = {"user": _Distinct(), "assistant": _Distinct()}
        self.near_duplicates = _NearDuplicates()
        self.layers: Counter[str] = Counter()
        self.users = self.drawn = self.noised = self.fell_back = self.assistants = self.truncated = 0

    def add(self, batch: pa.RecordBatch) -> None:
        roles = batch.column("role")
        shingles: dict[str, list[bytes]] = {}  # per conversation: one sketch update per batch, not per message
        for conversation, role, content in zip(batch.column("interaction_id").to_pylist(), roles.to_pylist(),
                                               batch.column("content").to_pylist(), strict=True):
            words = _WORD.findall(content.lower())
            shingles.setdefault(conversation, []).extend(
                " ".join(words[i:i + 3]).encode() for i in range(max(1, len(words) - 2)))
            if role in self.diversity:
                self.diversity[role].add(words)
        for conversation, grams in shingles.items():
            self.near_duplicates.add(conversation, grams)
        users = batch.filter(pc.equal(roles, "user"))
        assistants = batch.filter(pc.equal(roles, "assistant"))
        fell_back = pc.fill_null(pc.not_equal(users.column("noise_fallback"), ""), False)  # a reason says why
        drawn = pc.or_kleene(users.column("was_noised"), fell_back)  # turns the distractor was asked for
        self.users += users.num_rows
        self.drawn += _count(drawn)
        self.noised += _count(users.column("was_noised"))
        self.fell_back += _count(pc.and_kleene(drawn, fell_back))
        self.layers.update(layer for layer in users.column("noise_layer").to_pylist() if layer)
        self.assistants += assistants.num_rows
        self.truncated += _count(assistants.column("truncated"))


MESSAGE_COLUMNS = ["interaction_id", "role", "content", "was_noised", "noise_layer", "noise_fallback", "truncated"]


def quality(dataset: Dataset, ix: pa.Table, distractor: DistractorConfig | None = None) -> dict[str, Any]:
    """The quality section of `ix` (the interactions table, with INTERACTION_COLUMNS) and the dataset's
    messages (read a batch at a time); `distractor` (the run's config) gives what the noise is
    measured against."""
    tally = _MessageTally()
    for batch in dataset.batches("messages", MESSAGE_COLUMNS):
        tally.add(batch)
    rows = ix.select(list(INTERACTION_COLUMNS)).to_pylist()
    moved = [similarity(r["original_query"], r["initial_query"]) for r in rows if r["style_transferred"]]
    noise: dict[str, Any] = {"activation_rate": _rate(tally.drawn, tally.users),
                             "noised_rate": _rate(tally.noised, tally.users)}
    if distractor is not None:
        configured = distractor.activation_probability if distractor.enabled else 0.0
        noise.update(configured_probability=configured,
                     difference=round(noise["activation_rate"] - configured, 4))
    return {
        "diversity": {role: counted.rates() for role, counted in tally.diversity.items()},
        "near_duplicate_rate": tally.near_duplicates.rate(),
        "rewrite_similarity": {"rewritten": len(moved),
                               "mean": round(statistics.fmean(moved), 4) if moved else None,
                               "median": round(statistics.median(moved), 4) if moved else None},
        "style_transfer_fallback_rate": _rate(sum(1 for r in rows if r["style_transfer_fallback"]), len(rows)),
        "noise": noise,
        "layer_mix": _layer_mix(tally.layers, distractor),
        "noise_fallback_rate": _rate(tally.fell_back, tally.drawn),
        "truncation_rate": _rate(tally.truncated, tally.assistants),
        "violations": _violations(r["violations"] for r in rows),
        "termination_reasons": dict(Counter(r["termination_reason"] for r in rows).most_common()),
    }


def _count(flags: pa.ChunkedArray | pa.Array) -> int:
    """How many of the flags are true (nulls are not)."""
    return int(pc.sum(flags).as_py() or 0)


def summary_rows(section: Mapping[str, Any]) -> list[Row]:
    """The quality section as (figure, value) rows, for `personasim stats` and the Prefect UI."""
    diversity, noise, mix = section["diversity"], section["noise"], section["layer_mix"]
    rows: list[tuple[str, Any]] = [
        *((f"distinct-1 / distinct-2, {group} turns",
           f"{diversity[group]['distinct_1']} / {diversity[group]['distinct_2']}") for group in ("user", "assistant")),
        ("near-duplicate conversations", section["near_duplicate_rate"]),
        ("rewrite similarity to the original (median)", section["rewrite_similarity"]["median"]),
        ("noise activation (configured)", f"{noise['activation_rate']} ({noise.get('configured_probability', '-')})"),
        ("noise layer share (configured)", {layer: f"{share} ({(mix.get('configured') or {}).get(layer, '-')})"
                                            for layer, share in mix["share"].items()} or "none"),
        ("noise fallback rate", section["noise_fallback_rate"]),
        ("style transfer fallback rate", section["style_transfer_fallback_rate"]),
        ("truncation rate", section["truncation_rate"]),
        ("violations before repair", section["violations"]["before_repair"] or "none"),
        ("violations after repair", section["violations"]["after_repair"] or "none"),
        ("termination reasons", section["termination_reasons"]),
    ]
    if "turns_histogram" in section:
        per_persona = section["interactions_per_persona"]
        rows += [("turns histogram", section["turns_histogram"]),
                 ("interactions per persona (min / median / max)",
                  f"{per_persona['min']} / {per_persona['median']} / {per_persona['max']}")]
    return rows


def as_markdown(section: Mapping[str, Any]) -> str:
    """The quality section as a markdown table (the Prefect UI's artifact)."""
    return "\n".join(["| quality | value |", "| --- | --- |",
                      *(f"| {name} | {markdown(value)} |" for name, value in summary_rows(section))])
