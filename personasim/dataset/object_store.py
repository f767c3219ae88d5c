"""Interactions saved to object storage the moment they are done: one object each under `_store/`.

The local store keeps an append-only index beside its files; object storage has no append, and
listing the prefix is the index. An object PUT is atomic, so a reader sees a whole interaction
or none.
"""

from __future__ import annotations

import json
import urllib.parse

import pyarrow.fs as pafs

from personasim.errors import StorageError
from personasim.interaction_generator.storage import file_name_for, interaction_json
from personasim.records import Interaction


class ObjectInteractionStorage:
    """The pipeline's view of `InteractionStorage` (save, ids, load) on a pyarrow filesystem."""

    def __init__(self, fs: pafs.FileSystem, base: str) -> None:
        self.fs = fs
        self.base = base.rstrip("/")

    def _path(self, interaction_id: str) -> str:
        return f"{self.base}/{file_name_for(interaction_id)}"

    def save(self, interaction: Interaction) -> str:
        path = self._path(interaction.interaction_id)
        _, payload = interaction_json(interaction)
        try:
            with self.fs.open_output_stream(path) as out:
                out.write(payload)
        except OSError as exc:
            raise StorageError(f"cannot store {path}: {exc}") from None
        return path

    def ids(self) -> list[str]:
        if self.fs.get_file_info(self.base).type == pafs.FileType.NotFound:
            return []
        ids = []
        for info in self.fs.get_file_info(pafs.FileSelector(self.base)):
            name = info.base_name
            if info.type != pafs.FileType.File or not name.endswith(".json"):
                continue
            # a name is the percent-encoded id, except long ids, shortened with a hash after "%%"
            ids.append(self.load(info.path)["interaction_id"] if "%%" in name
                       else urllib.parse.unquote(name.removesuffix(".json")))
        return ids

    def load(self, path: str) -> dict:
        try:
            with self.fs.open_input_stream(path) as handle:
                return json.loads(handle.read())
        except FileNotFoundError:
            raise KeyError(f"no stored interaction at {path}") from None
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {path}: {exc}") from None

    def load_interaction(self, interaction_id: str) -> Interaction:
        return Interaction.from_dict(self.load(self._path(interaction_id)))
