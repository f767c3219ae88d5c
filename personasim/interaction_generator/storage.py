"""Incremental storage: each interaction is one JSON file, written atomically the moment it is done.

The files are the truth; `index.jsonl` is an append-only summary for fast listing. A crash
between the file's rename and the index line is repaired on the next open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Protocol

from personasim.errors import StorageError
from personasim.fsio import atomic_write_bytes
from personasim.records import Interaction

log = logging.getLogger("personasim.storage")

_MAX_NAME = 180


class InteractionSink(Protocol):
    def add_interaction(self, interaction: Interaction) -> Any: ...


def file_name_for(interaction_id: str) -> str:
    """A file name that is the id, percent-encoded: no `/`, no leading dot, no control characters.

    Long ids keep a readable prefix plus a hash; `%%` never appears in an encoded id, so the
    shortened names cannot collide with the plain ones.
    """
    if not isinstance(interaction_id, str) or not interaction_id:
        raise StorageError(f"interaction_id must be a non-empty string, got {interaction_id!r}")
    quoted = urllib.parse.quote(interaction_id, safe="-_").replace(".", "%2E").replace("~", "%7E")
    if len(quoted) > _MAX_NAME:
        digest = hashlib.sha256(interaction_id.encode("utf-8")).hexdigest()[:24]
        quoted = f"{quoted[:120]}%%{digest}"
    return quoted + ".json"


def interaction_json(interaction: Interaction) -> tuple[dict[str, Any], bytes]:
    """An interaction as stored: its dict, and the file's bytes."""
    data = interaction.to_dict()
    return data, json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")


class InteractionStorage:
    """Saves, loads and lists interactions under one directory; safe across threads."""

    INDEX_FILE = "index.jsonl"

    def __init__(self, output_dir: str | os.PathLike, collector: InteractionSink | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.collector = collector
        self._lock = threading.Lock()
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create interaction directory {self.output_dir}: "
                               f"{exc.strerror or exc}") from None
        self._index_path = self.output_dir / self.INDEX_FILE
        self._index: dict[str, dict[str, Any]] = self._open_index()

    # -- paths ---------------------------------------------------------------------------------
    def path_for(self, interaction_id: str) -> Path:
        path = self.output_dir / file_name_for(interaction_id)
        if path.parent != self.output_dir:  # defence in depth; file_name_for never emits a separator
            raise StorageError(f"interaction id {interaction_id!r} would be stored outside {self.output_dir}")
        return path

    # -- index ---------------------------------------------------------------------------------
    def _read_index_lines(self) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        try:
            lines = self._index_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return entries
        except OSError as exc:
            raise StorageError(f"cannot read {self._index_path}: {exc.strerror or exc}") from None
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
                entries[entry["interaction_id"]] = entry
            except (ValueError, KeyError, TypeError):
                log.warning("%s line %d is torn or invalid (an earlier crash); it is rebuilt from the files",
                            self._index_path, number)
        return entries

    def _open_index(self) -> dict[str, dict[str, Any]]:
        entries = self._read_index_lines()
        on_disk = {p.name for p in self.output_dir.glob("*.json") if not p.name.startswith(".")}
        known = {file_name_for(i): i for i in entries}
        changed = False
        for name in sorted(on_disk - set(known)):
            try:
                data = json.loads((self.output_dir / name).read_text(encoding="utf-8"))
                entries[data["interaction_id"]] = self._entry(data)
                changed = True
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("skipping unreadable interaction file %s", self.output_dir / name)
        for name in set(known) - on_disk:
            del entries[known[name]]
            changed = True
        if changed:
            payload = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries.values())
            atomic_write_bytes(self._index_path, payload.encode("utf-8"))
        return entries

    @staticmethod
    def _entry(data: dict[str, Any]) -> dict[str, Any]:
        return {"interaction_id": data["interaction_id"], "persona_id": data.get("persona_id"),
                "query_id": data.get("query_id"), "num_turns": data.get("num_turns"),
                "file": file_name_for(data["interaction_id"])}

    def _append_index(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self._index_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- API -----------------------------------------------------------------------------------
    def save(self, interaction: Interaction) -> str:
        """Store durably; saving the same interaction again replaces it and adds no index line."""
        data, payload = interaction_json(interaction)
        path = self.path_for(interaction.interaction_id)
        atomic_write_bytes(path, payload)
        with self._lock:
            if interaction.interaction_id not in self._index:
                entry = self._entry(data)
                try:
                    self._append_index(entry)
                except OSError as exc:
                    # The interaction file is safe; the next open rebuilds the missing index line.
                    raise StorageError(f"stored {path.name} but cannot update {self._index_path}: "
                                       f"{exc.strerror or exc}") from None
                self._index[interaction.interaction_id] = entry
        if self.collector is not None:
            self.collector.add_interaction(interaction)
        return str(path)

    def exists(self, interaction_id: str) -> bool:
        with self._lock:
            return interaction_id in self._index

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._index)

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)

    def load(self, interaction_id: str) -> dict[str, Any]:
        path = self.path_for(interaction_id)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyError(f"no stored interaction {interaction_id!r} in {self.output_dir}") from None
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {path}: {exc}") from None

    def load_interaction(self, interaction_id: str) -> Interaction:
        return Interaction.from_dict(self.load(interaction_id))

    def load_all(self) -> list[dict[str, Any]]:
        return [self.load(i) for i in self.ids()]
