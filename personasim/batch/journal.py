"""The batch run's journal: every request a pair asked for, which upload and batch carries it, and
its answer, in one SQLite file beside the dataset (`_batch/journal.sqlite`).

It is written before anything is paid for or waited on: a request is recorded before its file
goes up, a file's id before its batch is created, a batch's id before it is polled. A killed run,
restarted, finds every batch it created (or adopts one created just before the kill, by its input
file) and never submits a request twice; answers are kept, so replaying a pair costs nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from personasim.batch.requests import Answer, BatchRequest, SentLine
from personasim.errors import ConfigError

if TYPE_CHECKING:
    from personasim.dataset import Dataset

JOURNAL = "_batch/journal.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    custom_id TEXT PRIMARY KEY,      -- the batch line's id: <interaction id>#<call>|<operation>
    interaction_id TEXT NOT NULL,
    seq INTEGER NOT NULL,            -- the call's place in its pair's conversation
    request_hash TEXT NOT NULL,      -- what was asked: a replay that asks otherwise is refused
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    module TEXT NOT NULL,
    operation TEXT NOT NULL,
    persona_id TEXT,
    body TEXT,                       -- the line's request body, until it is answered
    state TEXT NOT NULL,             -- queued | submitted | answered
    upload TEXT,                     -- the upload (input file and batch) that carries it
    tries INTEGER NOT NULL DEFAULT 0,  -- transient failures so far
    answer TEXT                      -- the reply or the error, as JSON
);
CREATE INDEX IF NOT EXISTS requests_pair ON requests (interaction_id);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state, endpoint, model);
CREATE INDEX IF NOT EXISTS requests_upload ON requests (upload);
CREATE TABLE IF NOT EXISTS uploads (
    upload TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    round INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    planned_at REAL NOT NULL,
    file_id TEXT,                    -- set once the input file is up
    batch_id TEXT,                   -- set once its batch is created
    status TEXT,                     -- the batch's last known status
    ended_at REAL                    -- set once its results are read
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
PAGE = 1_000  # requests read at a time while a round's files are written


def journal_path(dataset: Dataset, option: str) -> Path:
    """The batch journal of a dataset; a batch run needs a local dataset root (`option` names it)."""
    if not dataset.local:
        raise ConfigError(f"{option} {dataset.root}: a batch run keeps its journal beside the dataset, which "
                          "needs a local folder (object storage has no atomic update)")
    return Path(dataset.path(JOURNAL))


@dataclass(frozen=True)
class Known:
    """A pair's call as the journal has it: what was asked, and the answer once there is one."""

    request_hash: str
    answer: Answer | None


@dataclass(frozen=True)
class Upload:
    upload: str
    endpoint: str
    model: str
    round: int
    lines: int
    planned_at: float
    file_id: str | None
    batch_id: str | None
    status: str | None


class Journal:
    """One batch run's state, safe across threads (one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a recorded batch id survives a power cut, not only a kill
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- pairs ------------------------------------------------------------------------------------
    def known(self, interaction_id: str) -> dict[int, Known]:
        """The calls of a pair the journal holds, by their place in the conversation."""
        rows = self._read("SELECT seq, request_hash, answer FROM requests WHERE interaction_id = ?", (interaction_id,))
        return {seq: Known(digest, Answer.from_json(answer) if answer else None) for seq, digest, answer in rows}

    def waiting(self) -> set[str]:
        """Pairs with a request not yet answered."""
        return {r[0] for r in self._read("SELECT DISTINCT interaction_id FROM requests WHERE state != 'answered'")}

    def ask(self, request: BatchRequest) -> None:
        """A request to send with the next round (asked again by a replay: kept as it is)."""
        self._write("INSERT OR IGNORE INTO requests (custom_id, interaction_id, seq, request_hash, endpoint, model, "
                    "module, operation, persona_id, body, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued')",
                    [(request.custom_id, request.interaction_id, request.seq, request.request_hash, request.endpoint,
                      request.model, request.module, request.operation, request.persona_id, json.dumps(request.body))])

    def record(self, request: BatchRequest, answer: Answer) -> None:
        """A call made online in a batch run, answered at once: kept, so no replay pays for it again."""
        self._write("INSERT OR REPLACE INTO requests (custom_id, interaction_id, seq, request_hash, endpoint, model, "
                    "module, operation, persona_id, state, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'answered', ?)",
                    [(request.custom_id, request.interaction_id, request.seq, request.request_hash, request.endpoint,
                      request.model, request.module, request.operation, request.persona_id, answer.to_json())])

    def answer(self, answers: Iterable[tuple[str, Answer]]) -> None:
        self._write("UPDATE requests SET state = 'answered', answer = ?, body = NULL WHERE custom_id = ?",
                    [(answer.to_json(), custom_id) for custom_id, answer in answers])

    def requeue(self, custom_ids: Iterable[str], *, count: bool) -> None:
        """Back to the queue for the next round (`count`: a transient failure, one try spent)."""
        self._write("UPDATE requests SET state = 'queued', upload = NULL, tries = tries + ? WHERE custom_id = ?",
                    [(int(count), custom_id) for custom_id in custom_ids])

    def rewrite(self, custom_id: str, body: dict[str, Any]) -> None:
        self._write("UPDATE requests SET body = ? WHERE custom_id = ?", [(json.dumps(body), custom_id)])

    # -- rounds -----------------------------------------------------------------------------------
    def queued_groups(self) -> list[tuple[str, str]]:
        """(endpoint, model) of the requests waiting to go out: a batch file holds one model."""
        return [(e, m) for e, m in self._read("SELECT DISTINCT endpoint, model FROM requests WHERE state = 'queued'")]

    def queued(self, endpoint: str, model: str) -> Iterator[tuple[str, str]]:
        """(custom_id, body JSON) of the queued requests of one model, in the order they were asked, a
        page at a time (a round's bodies are not held at once; requests planned meanwhile are behind)."""
        after = 0
        while rows := self._read("SELECT rowid, custom_id, body FROM requests WHERE state = 'queued' AND "
                                 "endpoint = ? AND model = ? AND rowid > ? ORDER BY rowid LIMIT ?",
                                 (endpoint, model, after, PAGE)):
            after = rows[-1][0]
            yield from ((custom_id, body) for _, custom_id, body in rows)

    def plan(self, upload: str, endpoint: str, model: str, round_: int, custom_ids: list[str], size: int) -> None:
        """An upload about to go out, and the requests it carries (before the file is sent)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO uploads (upload, endpoint, model, round, lines, bytes, planned_at) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", (upload, endpoint, model, round_, len(custom_ids), size,
                                                              time.time()))
            self._db.executemany("UPDATE requests SET state = 'submitted', upload = ? WHERE custom_id = ?",
                                 [(upload, c) for c in custom_ids])
            self._db.execute("COMMIT")

    def uploaded(self, upload: str, file_id: str) -> None:
        self._write("UPDATE uploads SET file_id = ? WHERE upload = ?", [(file_id, upload)])

    def created(self, upload: str, batch_id: str, status: str) -> None:
        self._write("UPDATE uploads SET batch_id = ?, status = ? WHERE upload = ?", [(batch_id, status, upload)])

    def status(self, upload: str, status: str) -> None:
        self._write("UPDATE uploads SET status = ? WHERE upload = ?", [(status, upload)])

    def ended(self, upload: str, status: str) -> None:
        self._write("UPDATE uploads SET status = ?, ended_at = ? WHERE upload = ?", [(status, time.time(), upload)])

    def forget(self, upload: str) -> None:
        """An upload that never became a batch: its requests back in the queue, untried."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE requests SET state = 'queued', upload = NULL WHERE upload = ? AND "
                             "state = 'submitted'", (upload,))
            self._db.execute("DELETE FROM uploads WHERE upload = ?", (upload,))
            self._db.execute("COMMIT")

    def open_uploads(self) -> list[Upload]:
        """Uploads whose results are not read yet: planned, uploaded, or batches in flight."""
        rows = self._read("SELECT upload, endpoint, model, round, lines, planned_at, file_id, batch_id, status "
                          "FROM uploads WHERE ended_at IS NULL ORDER BY planned_at")
        return [Upload(*row) for row in rows]

    def sent(self, upload: str) -> dict[str, SentLine]:
        """The requests an upload carries that are still without an answer, by custom_id."""
        rows = self._read("SELECT custom_id, interaction_id, model, module, operation, persona_id, tries, "
                          "json_extract(body, '$.response_format.type') FROM requests WHERE upload = ? AND "
                          "state = 'submitted'", (upload,))
        return {row[0]: SentLine(*row) for row in rows}

    def body(self, custom_id: str) -> dict[str, Any]:
        """A request's body, as it goes out."""
        rows = self._read("SELECT body FROM requests WHERE custom_id = ?", (custom_id,))
        return json.loads(rows[0][0]) if rows and rows[0][0] else {}

    def counts(self) -> dict[str, int]:
        """Uploads by where they stand: submitted (all), in flight, done."""
        rows = self._read("SELECT COUNT(*), COUNT(ended_at) FROM uploads WHERE batch_id IS NOT NULL")
        total, ended = rows[0]
        return {"submitted": total, "in_progress": total - ended, "done": ended}

    def next_round(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'round'").fetchone()
            value = int(row[0]) + 1 if row else 1
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('round', ?)", (str(value),))
        return value

    def rounds(self) -> int:
        rows = self._read("SELECT value FROM meta WHERE key = 'round'")
        return int(rows[0][0]) if rows else 0
