"""What was spent: every call that returned, written as it returns, whatever became of its pair.

A dataset's own totals count the calls of the interactions in it (exact after any resume);
this log counts everything paid for, failed and interrupted pairs included. On a local root each
process appends to its own `_spend/<run>-<pid>.jsonl`, one write per call, so a killed process
loses none it was charged for; object storage has no append, so there each batch's calls are one
object, PUT when the batch ends.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from personasim.dataset.store import Dataset
from personasim.records import Usage

SPEND = "_spend"


class SpendLog:
    """The `SpendSink` of one run in one process."""

    def __init__(self, dataset: Dataset, run_id: str) -> None:
        self.dataset = dataset
        self.run_id = run_id
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._buffer: list[bytes] = []
        if dataset.local:
            directory = Path(dataset.path(SPEND))
            directory.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(directory / f"{run_id}-{os.getpid()}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                               0o644)

    def write(self, usage: Usage) -> None:
        line = (json.dumps({**usage.to_dict(), "run_id": self.run_id}) + "\n").encode()
        with self._lock:
            if self._fd is not None:
                os.write(self._fd, line)
            else:
                self._buffer.append(line)

    def flush(self) -> None:
        """Object storage: the calls since the last flush, as one object."""
        with self._lock:
            lines, self._buffer = self._buffer, []
        if lines:
            self.dataset.write_file(f"{SPEND}/{self.run_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl",
                                    b"".join(lines))

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


SPEND_SCHEMA = pa.schema([("module", pa.string()), ("model", pa.string()), ("input_tokens", pa.int64()),
                          ("output_tokens", pa.int64()), ("cached_tokens", pa.int64()), ("batch", pa.bool_())])
OPTIONAL = {"cached_tokens": 0, "batch": False}  # fields a log line written before them lacks


def read_spend(dataset: Dataset) -> pa.Table:
    """Every call in the dataset's spend log, as columns (a line torn by a kill mid-write is skipped):
    a column per field rather than a dict per call, so 100k calls stay a few MB."""
    columns: dict[str, list[Any]] = {name: [] for name in SPEND_SCHEMA.names}
    for info in dataset.list_files(SPEND):
        if not info.base_name.endswith(".jsonl"):
            continue
        with dataset.fs.open_input_stream(info.path) as handle:
            for line in handle.read().decode("utf-8", "replace").splitlines():
                try:
                    call = json.loads(line)
                    values = [call[name] if name not in OPTIONAL else call.get(name, OPTIONAL[name])
                              for name in SPEND_SCHEMA.names]
                except (ValueError, KeyError, TypeError):
                    continue
                for name, value in zip(SPEND_SCHEMA.names, values, strict=True):
                    columns[name].append(value)
    return pa.table(columns, schema=SPEND_SCHEMA)
