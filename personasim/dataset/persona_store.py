"""Each persona's system prompt saved the moment the formulator wrote it: `_personas/`, one JSON
per persona, so a kill between the call and the wave that writes the `personas` table pays for
no prompt twice (the next run writes what is here without a call)."""

from __future__ import annotations

import json
import urllib.parse

from personasim.dataset.store import Dataset
from personasim.errors import StorageError
from personasim.interaction_generator.storage import file_name_for
from personasim.personas.persona import Persona

PERSONA_STORE = "_personas"


class PersonaStore:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def save(self, persona: Persona) -> None:
        self.dataset.write_json(f"{PERSONA_STORE}/{file_name_for(persona.persona_id)}", persona.to_dict())

    def ids(self) -> set[str]:
        """Every stored persona's id: its file's name (a long id's shortened name: read from the file)."""
        ids = set()
        for info in self.dataset.list_files(PERSONA_STORE):
            name = info.base_name
            if name.endswith(".json") and not name.startswith("."):
                ids.add(self._read(info.path).persona_id if "%%" in name
                        else urllib.parse.unquote(name.removesuffix(".json")))
        return ids

    def load(self, persona_id: str) -> Persona:
        return self._read(self.dataset.path(PERSONA_STORE, file_name_for(persona_id)))

    def _read(self, path: str) -> Persona:
        try:
            with self.dataset.fs.open_input_stream(path) as handle:
                return Persona.from_dict(json.loads(handle.read()))
        except (OSError, ValueError, KeyError) as exc:
            raise StorageError(f"cannot read the stored persona {path}: {exc}") from None
