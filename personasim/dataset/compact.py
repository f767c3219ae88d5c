"""Compaction: a partition's small wave files merged into a few files of sensible size.

A run commits a wave file per table and partition every few dozen pairs; left alone, 10k pairs
make hundreds of small files that every reader opens one by one. Compaction streams a
partition's small files (batch by batch, so memory stays flat) into new files and swaps them in
with a roll-forward journal:

1. the merged files are written under hidden `.pending` names no reader picks up;
2. the journal (`_compaction/<id>.json`: pending -> final name, the files replaced) is written
   atomically: the commit point;
3. each pending file is renamed to its final `part-<id>-<n>.parquet`, the replaced files are
   deleted, commit markers name the new files, markers left with no file go, the journal goes.

Killed before 2, the pending files are garbage (`prepare()` deletes them); killed after, the next
`prepare()` finishes step 3 (every step can be repeated). No row is lost or counted twice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from personasim.dataset.schema import TABLES

if TYPE_CHECKING:
    from personasim.dataset.store import Dataset

JOURNALS = "_compaction"
TARGET_BYTES = 128 * 1024 * 1024  # files at least this big are left as they are; merged files stop here
PENDING = ".pending"


@dataclass(frozen=True)
class CompactionResult:
    files_before: int
    files_after: int
    partitions: int

    def line(self) -> str:
        return (f"{self.files_before} files in {self.partitions} partitions compacted into {self.files_after}"
                if self.partitions else "nothing to compact: every partition holds at most one small file")


def _partitions(store: Dataset) -> dict[tuple[str, str], list[pafs.FileInfo]]:
    """(table, leaf partition directory) -> its small part files, where there is more than one."""
    found: dict[tuple[str, str], list[pafs.FileInfo]] = {}
    for table in TABLES:
        for info in store.list_files(table):
            if info.base_name.startswith("part-") and info.base_name.endswith(".parquet") and (
                    info.size < TARGET_BYTES):
                found.setdefault((table, info.path.rsplit("/", 1)[0]), []).append(info)
    return {key: sorted(files, key=lambda f: f.path) for key, files in found.items() if len(files) > 1}


def _merge(store: Dataset, files: list[pafs.FileInfo], table: str, directory: str, compaction: str
           ) -> list[dict[str, str]]:
    """Stream `files` into pending files of up to TARGET_BYTES of input each; their moves."""
    import pyarrow.dataset as ds  # imports pandas: not before a run's first calls

    schema = TABLES[table]
    moves: list[dict[str, str]] = []
    writer = None
    written = 0
    for info in files:
        if writer is None or written >= TARGET_BYTES:
            if writer is not None:
                writer.close()
            final = f"{directory}/part-{compaction}-{len(moves):03d}.parquet"
            pending = f"{directory}/.part-{compaction}-{len(moves):03d}.parquet{PENDING}"
            moves.append({"pending": pending, "final": final})
            # given a path and the filesystem, the writer owns the file and its close() finishes the
            # upload (a stream handed to it would stay open: an unfinished object on S3)
            writer = pq.ParquetWriter(pending, schema, filesystem=store.fs, compression="zstd")
            written = 0
        for batch in ds.dataset(info.path, format="parquet", filesystem=store.fs, schema=schema).to_batches():
            writer.write_batch(batch)
        written += info.size
    if writer is not None:
        writer.close()
    return moves


def compact(store: Dataset) -> CompactionResult:
    """Merge every partition's small files (the caller holds the dataset's lock)."""
    partitions = _partitions(store)
    if not partitions:
        return CompactionResult(0, 0, 0)
    compaction = f"compact-{uuid.uuid4().hex[:12]}"
    moves: list[dict[str, str]] = []
    replaced: list[str] = []
    for (table, directory), files in partitions.items():
        moves += _merge(store, files, table, directory, compaction)
        replaced += [f.path for f in files]
    journal = {"id": compaction, "moves": moves, "replaced": replaced}
    store.write_json(f"{JOURNALS}/{compaction}.json", journal)  # the commit point
    finish(store, journal)
    return CompactionResult(len(replaced), len(moves), len(partitions))


def _move(fs: pafs.FileSystem, source: str, destination: str) -> None:
    fs.move(source, destination)  # a rename on a local disk, copy and delete on object storage


def finish(store: Dataset, journal: dict[str, Any]) -> None:
    """Step 3 for one journal; safe to repeat after a kill at any point of it."""
    fs = store.fs
    for move in journal["moves"]:
        if fs.get_file_info(move["pending"]).type == pafs.FileType.File:
            _move(fs, move["pending"], move["final"])
    for path in journal["replaced"]:
        if fs.get_file_info(path).type == pafs.FileType.File:
            fs.delete_file(path)
    base = store.base.rstrip("/") + "/"
    waves: dict[str, list[str]] = {}  # part-<wave>.parquet: one commit marker per wave id, as prepare() reads them
    for move in journal["moves"]:
        name = move["final"].rsplit("/", 1)[1]
        waves.setdefault(name.removeprefix("part-").removesuffix(".parquet"), []).append(
            move["final"].removeprefix(base))
    for wave, files in waves.items():
        store.write_json(f"_commits/{wave}.json", {"wave_id": wave, "files": files})
    for marker in store.list_files("_commits"):
        with fs.open_input_stream(marker.path) as handle:
            files = json.loads(handle.read()).get("files", [])
        if files and not any(fs.get_file_info(store.path(*f.split("/"))).type == pafs.FileType.File for f in files):
            fs.delete_file(marker.path)  # a wave whose files were all compacted away
    fs.delete_file(store.path(JOURNALS, f"{journal['id']}.json"))


def recover(store: Dataset) -> None:
    """At the start of a run: finish a compaction a kill interrupted (its journal exists). Pending
    files of one killed before its journal are deleted with the other leftovers by `prepare()`."""
    for info in store.list_files(JOURNALS):
        if info.base_name.endswith(".json"):
            with store.fs.open_input_stream(info.path) as handle:
                finish(store, json.loads(handle.read()))
