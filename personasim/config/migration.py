"""Configs of personasim's earlier layout: where each moved key lives now, said in one line at
load, and the whole file rewritten by `personasim config migrate`.

The first layout had the retry settings on each model (`llm.<role>.max_retries`, `.max_retry_wait`)
and the concurrency and pair retries under `generation` (`max_workers`, `interaction_attempts`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

# (section, key) -> where it lives now; a role's key is under any llm.<role> (and model_pool entry)
ROLE_KEYS = {"max_retries": "retry.max_retries", "max_retry_wait": "retry.max_wait"}
GENERATION_KEYS = {"max_workers": "llm.default.max_concurrent_requests", "interaction_attempts": "retry.pair_attempts"}


def _role_sections(llm: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, section in llm.items():
        if not isinstance(section, dict):
            continue
        yield f"llm.{name}", section
        for i, entry in enumerate(section.get("model_pool") or []):
            if isinstance(entry, dict):
                yield f"llm.{name}.model_pool[{i}]", entry


def moved(raw: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first key of the earlier layout in `raw`, and where it lives now."""
    llm = raw.get("llm")
    if isinstance(llm, Mapping):
        for where, section in _role_sections(llm):
            for key, now in ROLE_KEYS.items():
                if key in section:
                    return f"{where}.{key}", now
    generation = raw.get("generation")
    if isinstance(generation, Mapping):
        for key, now in GENERATION_KEYS.items():
            if key in generation:
                return f"generation.{key}", now
    return None


def migrate_native(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`raw` with every moved key where it lives now (the default's value, or the first role's, when
    roles differed), and a line per key moved."""
    new: dict[str, Any] = copy.deepcopy(dict(raw))
    notes: list[str] = []
    retry = new.setdefault("retry", {})
    llm: dict[str, Any] = new["llm"] if isinstance(new.get("llm"), dict) else {}
    for where, section in sorted(_role_sections(llm), key=lambda item: item[0] != "llm.default"):
        for key, now in ROLE_KEYS.items():
            if key in section:
                value = section.pop(key)
                retry.setdefault(now.split(".")[1], value)
                notes.append(f"{where}.{key} -> {now}")
    generation: dict[str, Any] = new["generation"] if isinstance(new.get("generation"), dict) else {}
    for key, now in GENERATION_KEYS.items():
        if key in generation:
            value = generation.pop(key)
            if now.startswith("retry."):
                retry.setdefault(now.split(".")[1], value)
            else:
                new.setdefault("llm", {}).setdefault("default", {}).setdefault("max_concurrent_requests", value)
            notes.append(f"generation.{key} -> {now}")
    if not retry:
        del new["retry"]
    return new, notes
