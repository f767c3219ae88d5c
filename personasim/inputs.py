"""Reading pair files (JSONL, JSON, CSV, Parquet) into validated pairs, naming file and row on error."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from personasim.errors import InputError
from personasim.pairs import expand_pairs
from personasim.records import Pair

FORMATS = (".jsonl", ".json", ".csv", ".parquet")


def _jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield f"{path}: row {number}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: row {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def _json(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("personas"), list):
        data = data["personas"]
        if data and all(isinstance(r, dict) and "filepath" in r and "features" not in r for r in data):
            return  # PersonaGym's index.json beside its persona files: a listing, not personas
    if isinstance(data, dict) and ("features" in data or "persona_features" in data):
        data = [data]  # one of PersonaGym's persona files: one persona, not a list
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of rows (or {{\"personas\": [...]}})")
    for number, record in enumerate(data, 1):
        yield f"{path}: row {number}", record


def _csv_value(column: str, value: str) -> Any:
    if column in {"persona_features", "queries", "metadata"}:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"field {column}: not valid JSON") from None
    if column == "target_turns":
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"field {column}: not an integer: {value!r}") from None
    return value


def _csv_row(row: dict[str, str]) -> dict[str, Any]:
    """Columns as fields; `feature.X` (or `feature_X`) columns gather into persona_features; blanks are absent."""
    record: dict[str, Any] = {}
    features: dict[str, str] = {}
    for column, value in row.items():
        if column is None:
            raise ValueError("more values than header columns")
        if value is None or value == "":
            continue
        for prefix in ("feature.", "feature_"):
            if column.startswith(prefix):
                features[column[len(prefix):]] = value
                break
        else:
            record[column] = _csv_value(column, value)
    if features:
        record.setdefault("persona_features", {}).update(features)
    return record


def _csv(path: Path) -> Iterator[tuple[str, Any]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise InputError(f"{path}: CSV has no header row")
        for number, row in enumerate(reader, 1):
            where = f"{path}: row {number}"
            try:
                yield where, _csv_row(row)
            except ValueError as exc:
                raise InputError(f"{where}: {exc}") from None


def _plain(value: Any) -> Any:
    """Arrow's map columns come back as lists of (key, value) tuples; persona_features wants a dict."""
    if isinstance(value, list) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    return value


def _parquet(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield f"{path}: row {number}", {k: _plain(v) for k, v in row.items() if v is not None}


_READERS = {".jsonl": _jsonl, ".json": _json, ".csv": _csv, ".parquet": _parquet}


def read_records(path: str | Path) -> Iterator[tuple[str, Any]]:
    """(where, record) for each row; `where` is "file: row N" for error messages."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".ndjson":
        suffix = ".jsonl"
    reader = _READERS.get(suffix)
    if reader is None:
        raise InputError(f"{path}: unsupported input format {path.suffix!r} (use {', '.join(FORMATS)})")
    if not path.is_file():
        raise InputError(f"{path}: input file not found")
    try:
        yield from reader(path)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read input file: {exc.strerror or exc}") from None


def load_pairs(path: str | Path) -> list[Pair]:
    """Every pair in the file, validated; the first problem raises InputError naming file, row and field."""
    return load_input(path)


def input_files(path: str | Path) -> list[Path]:
    """The file itself, or every supported file in a directory (sorted, so runs are reproducible)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (*FORMATS, ".ndjson"))
        if not files:
            raise InputError(f"{path}: no input files ({', '.join(FORMATS)}) in this directory")
        return files
    return [path]


def load_input(path: str | Path, limit: int | None = None) -> list[Pair]:
    """Pairs from a file or a directory of files; ids must be unique across all of them."""
    records = (item for file in input_files(path) for item in read_records(file))
    pairs = expand_pairs(records)
    if not pairs:
        raise InputError(f"{path}: no pairs in the input (it is empty)")
    return pairs[:limit] if limit else pairs
