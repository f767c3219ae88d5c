"""A batch run: every pair in flight advances by one call per round, the round's calls going out as
batch files, one model per file, within the API's limits.

Each round replays the pairs whose last request was answered (personasim.batch.replay); a pair
that ends is stored and reported at once; the others ask for their next call. The round's requests
go up as files and batches, recorded in the journal first; the run polls them with a growing wait
and reads each batch's output and error files as it ends. What was paid for is booked as it comes
back, at the batch price. A stop (Ctrl-C, a cancelled flow run, the budget) leaves the batches in
flight recorded: the next run picks them up and pays for nothing twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

from openai.types import Batch

from personasim.batch.journal import PAGE, Journal, Upload
from personasim.batch.provider import CHAT, ENDED, BatchEndpoint, batch_errors, retry_later
from personasim.batch.replay import PairReplay, Routes, quiet_retreads
from personasim.batch.requests import Answer, NeedsReply, SentLine
from personasim.batch.results import read_results
from personasim.config import PersonasimConfig
from personasim.engine import Engine
from personasim.errors import ConfigError
from personasim.llm.client import call_usage
from personasim.llm.openai_backend import OpenAIBackend
from personasim.records import Outcome, Pair

log = logging.getLogger("personasim.batch")

REPLAY_CHUNK = 1_000  # pairs handed to the replay threads at a time: futures for all would hold ~2 KB each


class BatchRun:
    """One run's pairs through the batch APIs of its endpoints, on the run's engine."""

    def __init__(self, engine: Engine, journal: Journal, config: PersonasimConfig, mode: str, *,
                 stopped: Callable[[], bool] = lambda: False, label: str = "run") -> None:
        self.engine = engine
        self.journal = journal
        self.settings = config.batch
        self.retry = config.retry
        self.routes = Routes(engine.clients, mode, config.retry, self.settings.completion_window)
        self.stopped = stopped
        self.label = label

    def note(self) -> str:
        """Where the run stands, for its progress line."""
        counts = self.journal.counts()
        return (f"round {self.journal.rounds()} · batches {counts['submitted']} submitted, "
                f"{counts['in_progress']} in progress, {counts['done']} done")

    def _halted(self) -> bool:
        return self.stopped() or self.engine.stopped is not None

    # -- the rounds -------------------------------------------------------------------------------
    def run(self, pairs: Sequence[Pair], on_outcome: Callable[[Outcome], None]) -> int:
        """Every pair to its end, or until stopped; how many were left waiting on a batch."""
        with quiet_retreads():
            return self._rounds(pairs, on_outcome)

    def _rounds(self, pairs: Sequence[Pair], on_outcome: Callable[[Outcome], None]) -> int:
        pending = {self.engine.interaction_id(pair): pair for pair in pairs}
        self._recover()
        waiting = self.journal.waiting()
        ready = [pair for key, pair in pending.items() if key not in waiting]
        while pending and not self._halted():
            for key, outcome in self._replay(ready):
                if outcome is not None:
                    del pending[key]
                    on_outcome(outcome)
            if self._halted():
                break
            self._submit()
            if not self.journal.open_uploads():
                break  # nothing in flight: every pair ended, or the engine stopped them
            answered = self._wait()
            ready = [pending[key] for key in answered if key in pending]
        return len(pending)

    def _replay(self, pairs: list[Pair]) -> Iterator[tuple[str, Outcome | None]]:
        """Each pair replayed: its outcome once it ended, None while it waits for a reply."""
        with ThreadPoolExecutor(self.engine.concurrency, thread_name_prefix="personasim-replay") as pool:
            it = iter(pairs)
            while chunk := list(islice(it, REPLAY_CHUNK)):
                yield from pool.map(self._replay_one, chunk)

    def _replay_one(self, pair: Pair) -> tuple[str, Outcome | None]:
        key = self.engine.interaction_id(pair)
        try:
            with PairReplay(key, self.journal, self.routes, self.engine.spent) as replay:
                return key, self.engine.generate(pair, replay=replay)
        except NeedsReply:
            return key, None

    # -- out --------------------------------------------------------------------------------------
    def _endpoint(self, key: str) -> BatchEndpoint:
        endpoint = self.routes.endpoints.get(key)
        if endpoint is None:
            raise ConfigError(f"batch journal {self.journal.path}: its requests went to {key.split('|')[0]}, an "
                              "endpoint the config no longer sends batches to; run with the config that began it")
        return endpoint

    def _submit(self) -> None:
        """The queued requests as batch files (one model per file, within the limits), each recorded
        in the journal before it goes up, and its batch before it is polled."""
        groups = self.journal.queued_groups()
        if not groups:
            return
        round_ = self.journal.next_round()
        for key, model in groups:
            for n, (custom_ids, path, size) in enumerate(self._files(key, model)):
                upload = f"personasim-{self.label}-r{round_:04d}-{_slug(model)}-{n:03d}.jsonl"
                self.journal.plan(upload, key, model, round_, custom_ids, size)
                self._create(upload, key, self._endpoint(key).upload(upload, path))
        log.info("batch round %d: %s", round_, self.note())

    def _files(self, key: str, model: str) -> Iterator[tuple[list[str], Path, int]]:
        """The queued requests of one model as JSONL files within the per-file limits, each written
        beside the journal, uploaded before the next is written, then removed."""
        path = self.journal.path.with_name("upload.jsonl")
        lines = ((custom_id, f'{{"custom_id": {json.dumps(custom_id)}, "method": "POST", "url": "{CHAT}", '
                             f'"body": {body}}}\n'.encode()) for custom_id, body in self.journal.queued(key, model))
        line = next(lines, None)
        try:
            while line is not None:
                ids: list[str] = []
                size = 0
                with open(path, "wb") as out:
                    while line is not None and not (ids and (len(ids) >= self.settings.max_requests_per_file or
                                                             size + len(line[1]) > self.settings.max_bytes_per_file)):
                        out.write(line[1])
                        ids.append(line[0])
                        size += len(line[1])
                        line = next(lines, None)
                yield ids, path, size
        finally:
            path.unlink(missing_ok=True)

    def _create(self, upload: str, key: str, file_id: str) -> None:
        self.journal.uploaded(upload, file_id)
        batch = self._endpoint(key).create(file_id, {"personasim_upload": upload})
        self.journal.created(upload, batch.id, batch.status)

    def _recover(self) -> None:
        """What a killed run left: an upload planned but not sent goes again; a file sent whose batch
        was not recorded is looked for (a batch created just before the kill is adopted), else created."""
        for upload in self.journal.open_uploads():
            if upload.file_id is None:
                self.journal.forget(upload.upload)
            elif upload.batch_id is None:
                found = self._endpoint(upload.endpoint).find(upload.file_id, upload.planned_at)
                if found is not None:
                    log.info("adopting batch %s of %s (created before the run stopped)", found.id, upload.upload)
                    self.journal.created(upload.upload, found.id, found.status)
                else:
                    self._create(upload.upload, upload.endpoint, upload.file_id)

    # -- back -------------------------------------------------------------------------------------
    def _wait(self) -> set[str]:
        """Poll the batches in flight, waiting longer each time, until some end; the pairs they answered."""
        delay = self.settings.poll_s
        while not self.stopped():
            ended = False
            answered: set[str] = set()
            for upload in self.journal.open_uploads():
                assert upload.batch_id is not None  # _recover and _submit created every open upload's batch
                batch = self._endpoint(upload.endpoint).retrieve(upload.batch_id)
                if batch.status in ENDED:
                    answered |= self._read(upload, batch)
                    ended = True
                elif batch.status != upload.status:
                    self.journal.status(upload.upload, batch.status)
            if ended:
                return answered
            _sleep(delay, self.stopped)
            delay = min(delay * 1.5, self.settings.max_poll_s)
        return set()

    def _read(self, upload: Upload, batch: Batch) -> set[str]:
        """An ended batch's answers into the journal and the books, a page at a time; what it did not
        answer, queued again. The pairs it answered."""
        sent = self.journal.sent(upload.upload)
        answered: set[str] = set()
        retry: list[str] = []
        again: list[str] = []
        if batch.status == "failed":
            if retry_later(batch):
                retry = list(sent)
            else:
                reason = f"batch {batch.id} failed: {batch_errors(batch)}"
                failed = Answer.failed(reason, permanent=True)
                self._keep([(custom_id, failed) for custom_id in sent], sent, answered)
        else:
            seen: set[str] = set()
            answers: list[tuple[str, Answer]] = []
            for result in read_results(self._result_lines(upload.endpoint, batch), sent,
                                       time.time() - upload.planned_at):
                seen.add(result.custom_id)
                if result.kind == "answer" and result.answer is not None:
                    answers.append((result.custom_id, result.answer))
                elif result.kind == "retry" and sent[result.custom_id].tries >= self.retry.max_retries:
                    answers.append((result.custom_id, Answer.failed(result.reason, permanent=False)))
                elif result.kind == "retry":
                    retry.append(result.custom_id)
                elif result.kind == "schema":
                    self._ask_json_object(upload.endpoint, result.custom_id, result.reason)
                    again.append(result.custom_id)
                else:
                    again.append(result.custom_id)
                if len(answers) >= PAGE:
                    self._keep(answers, sent, answered)
                    answers = []
            self._keep(answers, sent, answered)
            retry.extend(custom_id for custom_id in sent if custom_id not in seen)  # a line the provider lost
        self.journal.requeue(retry, count=True)
        self.journal.requeue(again, count=False)
        self.journal.ended(upload.upload, batch.status)
        return answered

    def _result_lines(self, key: str, batch: Batch) -> Iterator[str]:
        """The lines of a batch's output file, then of its error file, each downloaded beside the journal."""
        path = self.journal.path.with_name("results.jsonl")
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            self._endpoint(key).download(file_id, path)
            try:
                with open(path, encoding="utf-8") as lines:
                    yield from lines
            finally:
                path.unlink(missing_ok=True)

    def _keep(self, answers: list[tuple[str, Answer]], sent: dict[str, SentLine], answered: set[str]) -> None:
        """Answers into the journal, then their calls into the books (at the batch price)."""
        self.journal.answer(answers)
        for custom_id, answer in answers:
            line = sent[custom_id]
            if answer.error is None:
                self.engine.spent.add(call_usage(line.module, line.operation, answer.completion(custom_id, line.model),
                                                 answer.latency_s, line.interaction_id, line.persona_id))
            answered.add(line.interaction_id)

    def _ask_json_object(self, key: str, custom_id: str, reason: str) -> None:
        """The endpoint refused a JSON schema: this request and every later one ask for any JSON object."""
        backend = next((c.backend for c in self.engine.clients.all()
                        if isinstance(c.backend, OpenAIBackend) and self.routes.endpoint(c) == key), None)
        if backend is not None:
            backend.refused_schema(reason)
        self.journal.rewrite(custom_id, {**self.journal.body(custom_id), "response_format": {"type": "json_object"}})


def _slug(model: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in model)[:40]


def _sleep(seconds: float, stopped: Callable[[], bool]) -> None:
    """Wait, but never past a stop by more than a fifth of a second."""
    end = time.monotonic() + seconds
    while not stopped() and (left := end - time.monotonic()) > 0:
        time.sleep(min(0.2, left))
