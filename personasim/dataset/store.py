"""The dataset root: hive-partitioned Parquet tables written in committed waves.

A wave's files are each written atomically, then a commit marker names them. A file without a
marker is what a crash left behind: `prepare()` deletes it before a run reads what is done, so
a rerun after a kill neither loses nor duplicates a row.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from personasim.dataset import compact as compaction
from personasim.dataset.object_store import ObjectInteractionStorage
from personasim.dataset.schema import FAILURES, TABLES
from personasim.errors import StorageError
from personasim.fsio import atomic_write_bytes, chunks
from personasim.interaction_generator.storage import InteractionStorage

if TYPE_CHECKING:
    import pyarrow.dataset as ds

COMMITS = "_commits"
STORE = "_store"
LOCK = "_run.lock"
CURRENT_FAILURES = "failures/current.parquet"
SCHEMAS = {**TABLES, "failures": FAILURES}
_PART = re.compile(r"^part-(?P<wave>.+)\.parquet$")
PARTITIONS = ("run_date", "variant", "split")


def resolve(root: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and base path for a local path or a URL such as s3://bucket/prefix."""
    if "://" in root:
        try:
            return pafs.FileSystem.from_uri(root)
        except (pa.ArrowInvalid, OSError) as exc:
            raise StorageError(f"cannot open dataset root {root}: {exc}") from None
    return pafs.LocalFileSystem(), str(Path(root).resolve())


class Dataset:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = str(root)
        self.fs, self.base = resolve(self.root)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    # -- paths --------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts])

    def url(self, *parts: str) -> str:
        """Where a file of the dataset is, as its user names it: a local path or the root's URL scheme."""
        return self.path(*parts) if self.local else "/".join([self.root.rstrip("/"), *parts])

    def interaction_storage(self) -> InteractionStorage | ObjectInteractionStorage:
        """Where the pipeline saves each interaction the moment it is done: `_store/`, one JSON each."""
        if self.local:
            return InteractionStorage(self.path(STORE))
        return ObjectInteractionStorage(self.fs, self.path(STORE))

    # -- run lock -----------------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """One writer per dataset root; a second run refuses with a clear message. Stale locks are taken over."""
        if not self.local:
            yield
            return
        Path(self.base).mkdir(parents=True, exist_ok=True)
        lock_path = Path(self.path(LOCK))
        me = {"pid": os.getpid(), "host": socket.gethostname(), "token": uuid.uuid4().hex}
        for _ in range(2):
            try:
                fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _read_lock(lock_path)
                if holder and _alive(holder):
                    raise StorageError(f"dataset {self.root} is in use by another run (pid {holder['pid']} on "
                                       f"{holder['host']}); wait for it to finish or remove {lock_path}") from None
                lock_path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
            break
        else:
            raise StorageError(f"cannot take the lock {lock_path}")
        try:
            yield
        finally:
            if (_read_lock(lock_path) or {}).get("token") == me["token"]:
                lock_path.unlink(missing_ok=True)

    # -- files --------------------------------------------------------------------------------
    def list_files(self, name: str) -> list[pafs.FileInfo]:
        """Every file below `name` (relative to the root)."""
        return self._list(self.path(name))

    def _list(self, directory: str) -> list[pafs.FileInfo]:
        info = self.fs.get_file_info(directory)
        if info.type == pafs.FileType.NotFound:
            return []
        return [f for f in self.fs.get_file_info(pafs.FileSelector(directory, recursive=True))
                if f.type == pafs.FileType.File]

    def _write_bytes(self, path: str, payload: bytes | Iterable[bytes]) -> None:
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        if self.local:
            atomic_write_bytes(Path(path), payload)
        else:
            with self.fs.open_output_stream(path) as out:  # an object PUT is atomic
                for chunk in chunks(payload):
                    out.write(chunk)

    def _write_table(self, path: str, table: pa.Table) -> None:
        """Parquet through the same atomic path as every other file (a wave's file is a few MB)."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        self._write_bytes(path, sink.getvalue().to_pybytes())

    def check_writable(self) -> None:
        """Fail now, with the reason, if the root cannot be written (before any call is paid for)."""
        probe = self.path(f"_probe-{uuid.uuid4().hex}")
        try:
            self.fs.create_dir(self.base, recursive=True)
            self._write_bytes(probe, b"")
            self.fs.delete_file(probe)
        except OSError as exc:
            raise StorageError(f"cannot write to dataset root {self.root}: {getattr(exc, 'strerror', None) or exc}"
                               ) from None

    def prepare(self) -> list[str]:
        """Create the root; finish a killed compaction; delete part files that no commit marker
        names (a crashed wave), a compaction's pending files, and the temporary files a killed
        write left anywhere."""
        try:
            self.fs.create_dir(self.base, recursive=True)
        except OSError as exc:
            raise StorageError(f"cannot create dataset root {self.root}: {exc}") from None
        compaction.recover(self)  # first: a compaction's journal names files no marker names yet
        committed = {f.base_name.removesuffix(".json") for f in self._list(self.path(COMMITS))}
        removed = []
        for table in TABLES:
            for info in self._list(self.path(table)):
                match = _PART.match(info.base_name)
                if (match and match["wave"] not in committed) or info.base_name.endswith(compaction.PENDING):
                    self.fs.delete_file(info.path)
                    removed.append(info.path)
        if self.local:  # object storage has no temporary files: every write is one PUT
            for tmp in Path(self.base).rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                removed.append(str(tmp))
        return removed

    def write_wave(self, wave_id: str, run_date: str, variant: str, rows: dict[str, list[dict[str, Any]]]
                   ) -> list[str]:
        """Write a wave's rows (table -> rows; training rows carry `split`), then commit it.

        Files go to `table/run_date=…/variant=<config fingerprint>/[split=…/]part-<wave>.parquet`.
        """
        files = []
        for table, table_rows in rows.items():
            if not table_rows:
                continue
            groups: dict[str, list[dict[str, Any]]] = {}
            for row in table_rows:
                key = f"split={row.pop('split')}" if table == "training" else ""
                groups.setdefault(key, []).append(row)
            for key, group in groups.items():
                parts = [table, f"run_date={run_date}", f"variant={variant}", *([key] if key else []),
                         f"part-{wave_id}.parquet"]
                path = self.path(*parts)
                self._write_table(path, pa.Table.from_pylist(group, schema=TABLES[table]))
                files.append("/".join(parts))
        marker = json.dumps({"wave_id": wave_id, "files": files}).encode()
        self._write_bytes(self.path(COMMITS, f"{wave_id}.json"), marker)
        return files

    def write_file(self, name: str, payload: bytes | Iterable[bytes]) -> str:
        """A file at `name` (relative to the root, `/`-separated), written atomically; `payload`
        may be chunks, written as they come."""
        path = self.path(*name.split("/"))
        self._write_bytes(path, payload)
        return path

    def write_json(self, name: str, payload: Any) -> str:
        return self.write_file(name, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, name: str) -> Any:
        try:
            with self.fs.open_input_stream(self.path(name)) as handle:
                return json.loads(handle.read())
        except FileNotFoundError:
            return None

    def compact(self) -> compaction.CompactionResult:
        """Merge each partition's small wave files into a few files (see `compact`)."""
        return compaction.compact(self)

    # -- reading ------------------------------------------------------------------------------
    def _arrow_dataset(self, name: str) -> ds.Dataset | None:
        """A table as an Arrow dataset with its partition columns; None while it has no file. Read
        with the declared schema, so a column added since an older file was written reads as null."""
        directory = self.path(name)
        if not any(f.base_name.endswith(".parquet") and not f.base_name.startswith(".")
                   for f in self._list(directory)):
            return None
        import pyarrow.dataset as ds  # here: it imports pandas (0.45 s), not needed before a run's first calls

        partitions = [pa.field(p, pa.string()) for p in PARTITIONS if p != "split" or name == "training"]
        return ds.dataset(directory, format="parquet", filesystem=self.fs, partitioning="hive",
                          schema=pa.schema([*SCHEMAS[name], *partitions]))

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """A table's rows with its partition columns (run_date, split), or an empty table."""
        dataset = self._arrow_dataset(name)
        if dataset is None:
            schema = SCHEMAS[name]  # partition columns (run_date, variant, split) are strings
            wanted = columns or schema.names  # built without pa.array, which imports pandas (0.3 s) to look at []
            return pa.Table.from_arrays([pa.nulls(0, schema.field(c).type if c in schema.names else pa.string())
                                         for c in wanted], names=wanted)
        return dataset.to_table(columns=columns)

    def batches(self, name: str, columns: list[str] | None = None, where: pc.Expression | None = None,
                batch_rows: int = 4_096) -> Iterator[pa.RecordBatch]:
        """A table's rows (those `where` keeps) a batch at a time: statistics and exports over a
        dataset of any size hold a batch or two, not the table. Batches are small and read little
        ahead: rows are whole messages or conversations, and with Arrow's default read-ahead (16
        batches) of 16k-row batches, publishing 5,000 pairs of real-length answers peaked 100 MB higher."""
        dataset = self._arrow_dataset(name)
        if dataset is not None:
            yield from dataset.to_batches(columns=columns, filter=where, batch_size=batch_rows, batch_readahead=2,
                                          fragment_readahead=1)

    def interaction_ids(self) -> set[str]:
        return set(self.table("interactions", ["interaction_id"]).column(0).to_pylist())

    def write_current_failures(self) -> int:
        """`failures/`: each pair's latest failure from the log, unless it has been stored since.

        Always written (empty when nothing failed), so `failures/` reads like every other table.
        """
        log = self.table("failure_log").sort_by([("failed_at", "descending")])
        done = self.interaction_ids()
        seen: set[str] = set()
        keep = []
        for index, interaction_id in enumerate(log.column("interaction_id").to_pylist()):
            if interaction_id not in done and interaction_id not in seen:
                seen.add(interaction_id)
                keep.append(index)
        current = log.take(pa.array(keep, type=pa.int64())).select(FAILURES.names).cast(FAILURES)
        self._write_table(self.path(CURRENT_FAILURES), current)
        return current.num_rows


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # cannot check another machine's process: assume it runs
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True
    return True
