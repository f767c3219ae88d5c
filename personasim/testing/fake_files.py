"""The Files API of the fake server: uploads (multipart/form-data, as the `openai` client sends
them), batch output files, and the cursor pages both list endpoints answer with."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any

from personasim.testing.fake_types import ApiError, ServerStats

UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "expires_at": None,
                "status_details": None}


def form_fields(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body's fields: name -> (filename, bytes)."""
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(400, "expected a multipart/form-data body")
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name:
            fields[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def cursor_page(items: list[dict[str, Any]], query: dict[str, str], default_limit: int) -> dict[str, Any]:
    """One page of `items` (already in listing order) after the `after` id, as the API's lists answer."""
    try:
        limit = int(query.get("limit", default_limit))
    except ValueError:
        limit = 0
    if limit < 1:
        raise ApiError(400, f"invalid limit {query.get('limit')!r}", param="limit")
    ids = [item["id"] for item in items]
    after = query.get("after")
    start = ids.index(after) + 1 if after in ids else 0
    data = items[start:start + limit]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": start + limit < len(items)}


class FileStore:
    """Files by id; thread-safe, since the handler serves each connection in its own thread."""

    def __init__(self, stats: ServerStats) -> None:
        self._stats = stats
        self._files: dict[str, StoredFile] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        with self._lock:
            stored = StoredFile(f"file-{next(self._ids):06d}", filename, purpose, data, int(time.time()))
            self._files[stored.id] = stored
            return stored

    def upload(self, content_type: str, raw: bytes) -> StoredFile:
        """POST /files: the `purpose` and `file` fields of a form."""
        fields = form_fields(content_type, raw)
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if purpose not in UPLOAD_PURPOSES:
            raise ApiError(400, f"invalid purpose {purpose!r}", param="purpose")
        if "file" not in fields:
            raise ApiError(400, "missing required parameter: 'file'", param="file")
        filename, data = fields["file"]
        stored = self.add(filename or "upload", purpose, data)
        with self._lock:
            self._stats.files_uploaded += 1
        return stored

    def get(self, file_id: str, param: str = "id") -> StoredFile:
        with self._lock:
            if file_id not in self._files:
                raise ApiError(404, f"No such File object: {file_id}", param=param)
            return self._files[file_id]

    def delete(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            if self._files.pop(file_id, None) is None:
                raise ApiError(404, f"No such File object: {file_id}", param="id")
        return {"id": file_id, "object": "file", "deleted": True}

    def listing(self, query: dict[str, str]) -> dict[str, Any]:
        """GET /files: newest first unless order=asc, filtered by purpose."""
        with self._lock:
            files = [f.to_json() for f in self._files.values()
                     if query.get("purpose") in (None, f.purpose)]
        if query.get("order", "desc") == "desc":
            files.reverse()
        return cursor_page(files, query, default_limit=10_000)
