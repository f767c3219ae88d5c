"""Durable, atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from personasim.errors import StorageError


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` survive a power cut (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def chunks(payload: bytes | Iterable[bytes]) -> Iterable[bytes]:
    """A payload given whole or as chunks, as chunks (writers take either)."""
    return [payload] if isinstance(payload, bytes) else payload


def atomic_write_bytes(path: Path, payload: bytes | Iterable[bytes]) -> None:
    """Write to a hidden temp file beside `path`, fsync it, rename over `path`, fsync the directory.

    `payload` may be chunks (an export written as it is made, never held whole)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as handle:
            for chunk in chunks(payload):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    fsync_dir(path.parent)
