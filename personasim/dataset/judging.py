"""Judging a dataset that exists: every conversation a configured judge has not scored yet, scored,
each result saved the moment it returns (`_scores/`) and then written to the `scores` table with
the calls it paid for (`token_usage`, outcome `judge`). Judging a judged dataset makes no call."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from personasim.config import PersonasimConfig
from personasim.dataset.rows import paid_rows, score_rows
from personasim.dataset.store import Dataset
from personasim.errors import ConfigError
from personasim.interaction_generator.storage import file_name_for
from personasim.judgement import Score
from personasim.llm.client import LLMClient
from personasim.llm.factory import judge_clients
from personasim.llm.ledger import Ledger, SpendSink, UsageLog
from personasim.record_base import Record
from personasim.records import Usage
from personasim.roles.judge import Judge

log = logging.getLogger("personasim.judging")

SCORE_STORE = "_scores"
_COLUMNS = ["interaction_id", "persona_features", "messages", "system_prompt", "config_fingerprint"]


@dataclass(frozen=True)
class Judged(Record):
    """One judge's scores of one conversation (none, with the reason, when it could not answer)."""

    interaction_id: str
    judge_model: str
    variant: str
    scores: tuple[Score, ...] = ()
    usage: tuple[Usage, ...] = ()
    missing: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Judged:
        return cls(data["interaction_id"], data["judge_model"], data["variant"],
                   tuple(Score.from_dict(s) for s in data.get("scores") or ()),
                   tuple(Usage.from_dict(u) for u in data.get("usage") or ()), data.get("missing"))


@dataclass
class JudgeSummary:
    scored: int = 0  # (conversation, judge) scored now
    recovered: int = 0  # scored by a judge run that was stopped before writing them
    already: int = 0  # scored before
    missing: list[str] = field(default_factory=list)


class ScoreStore:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    @staticmethod
    def name(interaction_id: str, model: str) -> str:
        return file_name_for(f"{interaction_id}@{model}")

    def save(self, judged: Judged) -> None:
        self.dataset.write_json(f"{SCORE_STORE}/{self.name(judged.interaction_id, judged.judge_model)}",
                                judged.to_dict())

    def load_all(self) -> Iterator[Judged]:
        for info in self.dataset.list_files(SCORE_STORE):
            if info.base_name.endswith(".json") and not info.base_name.startswith("."):
                with self.dataset.fs.open_input_stream(info.path) as handle:
                    yield Judged.from_dict(json.loads(handle.read()))


def _conversation(row: dict[str, Any]) -> list[tuple[str, str]]:
    """What the judge reads: user turns as the person meant them, the assistant's as sent."""
    return [(m["role"], m["clean_text"] if m["role"] == "user" and m["clean_text"] else m["content"])
            for m in row["messages"]]


def judge_dataset(dataset: Dataset, config: PersonasimConfig, run_id: str, concurrency: int = 8,
                  spend: SpendSink | None = None) -> JudgeSummary:
    """Score every conversation of `dataset` that a judge of `config` has not scored (the caller
    holds the dataset's lock). Results already saved but not written are written without a call."""
    if not config.spec.models.judges:
        raise ConfigError("judge: the config has no judge (llm.judge: a model, or a list of them)")
    clients = judge_clients(config)
    judge = Judge(clients, config.judging)
    scored = {(r["interaction_id"], r["judge_model"]) for r in dataset.table("scores", [
        "interaction_id", "judge_model"]).to_pylist()}
    store = ScoreStore(dataset)
    saved = [j for j in store.load_all() if (j.interaction_id, j.judge_model) not in scored]
    summary = JudgeSummary(recovered=len(saved))
    done = scored | {(j.interaction_id, j.judge_model) for j in saved}
    log_ = UsageLog(keep=False, sink=spend)
    results: list[Judged] = list(saved)
    with ThreadPoolExecutor(concurrency, thread_name_prefix="personasim-judge") as pool:
        for batch in dataset.batches("interactions", _COLUMNS, batch_rows=1024):
            rows = batch.to_pylist()
            todo = [(row, index, client) for row in rows for index, client in enumerate(clients)
                    if (row["interaction_id"], client.model) not in done]
            summary.already += len(rows) * len(clients) - len(todo)
            for judged in pool.map(lambda job: _score(judge, store, log_, *job), todo):
                results.append(judged)
                if judged.missing:
                    summary.missing.append(judged.missing)
                else:
                    summary.scored += 1
    _write(dataset, results, run_id)
    for client in clients:
        client.backend.close()
    return summary


def _score(judge: Judge, store: ScoreStore, spent: UsageLog, row: dict[str, Any], index: int, client: LLMClient
           ) -> Judged:
    ledger = Ledger(row["interaction_id"], spent)
    scores, missing = judge.score(dict(row["persona_features"]), _conversation(row), row["system_prompt"], ledger,
                                  judges=[index])
    judged = Judged(row["interaction_id"], client.model, row["config_fingerprint"], tuple(scores),
                    tuple(ledger.usage), missing[0] if missing else None)
    if not judged.missing:
        store.save(judged)  # a judge that did not answer is asked again next time
    return judged


def _write(dataset: Dataset, results: list[Judged], run_id: str) -> None:
    """The scores and what they cost, one committed wave per variant."""
    by_variant: dict[str, list[Judged]] = {}
    for judged in results:
        by_variant.setdefault(judged.variant, []).append(judged)
    run_date = f"{datetime.now(timezone.utc):%Y-%m-%d}"
    for number, (variant, judged_list) in enumerate(sorted(by_variant.items())):
        rows = {"scores": [r for j in judged_list for r in score_rows(j.interaction_id, j.scores, run_id)],
                "token_usage": [r for j in judged_list for r in paid_rows(j.usage, run_id, "judge")]}
        if rows["scores"] or rows["token_usage"]:
            dataset.write_wave(f"{run_id}-judge{number:03d}", run_date, variant, rows)
