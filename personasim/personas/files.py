"""Persona files: written by `personasim personas sample` to be looked at and edited before a run
pays for anything, and read back as a run's personas. PersonaGym's persona files (one JSON object
per persona, `features` for the features, an `index.json` beside them) are read as they are (see
personasim.inputs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from personasim.errors import InputError
from personasim.inputs import input_files, read_records
from personasim.pairs import PersonaInput, describe_error, persona_fields
from personasim.personas.persona import Persona, persona_id_for


def persona_line(persona: Persona) -> dict[str, Any]:
    """A persona as a line of a persona file (what `read_personas` takes back)."""
    row: dict[str, Any] = {"persona_id": persona.persona_id, "persona_features": dict(persona.features)}
    if persona.system_prompt is not None:
        row["system_prompt"] = persona.system_prompt
    row["metadata"] = {**persona.metadata, "index": persona.index}
    return row


def write_personas(personas: Iterable[Persona], path: str | Path) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for persona in personas:
            out.write(json.dumps(persona_line(persona), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_personas(path: str | Path) -> list[Persona]:
    """The personas of a file or folder, in order; a persona id given twice is an error naming both
    rows, a row without an id gets its features' hash."""
    personas: list[Persona] = []
    seen: dict[str, str] = {}
    for file in input_files(path):
        for where, record in read_records(file):
            persona = _persona(record, where, len(personas))
            if persona.persona_id in seen:
                raise InputError(f"{where}: field persona_id: {persona.persona_id!r} is already at "
                                 f"{seen[persona.persona_id]}")
            seen[persona.persona_id] = where
            personas.append(persona)
    if not personas:
        raise InputError(f"{path}: no personas in the file")
    return personas


def _persona(record: Any, where: str, index: int) -> Persona:
    if not isinstance(record, Mapping):
        raise InputError(f"{where}: expected a persona object, got {type(record).__name__}")
    given = persona_fields(record)
    metadata = given.pop("metadata", None) or {}
    if not isinstance(metadata, Mapping):
        raise InputError(f"{where}: field metadata: must be an object")
    given.setdefault("persona_id", persona_id_for(given.get("persona_features") or {}))
    try:
        persona = PersonaInput.model_validate(given)
    except ValidationError as exc:
        raise describe_error(exc, where) from None
    prompt = persona.system_prompt
    return Persona(persona.persona_id, dict(persona.persona_features), index, prompt,
                   "input" if prompt else None, metadata={k: v for k, v in metadata.items() if k != "index"})
