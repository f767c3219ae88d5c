"""The lines of a batch: validating an input file as the Batch API does (its error codes, 1-based
line numbers), the operation a line stands for, and the output and error file lines."""

from __future__ import annotations

import json
from typing import Any

from personasim.testing.fake_types import Fault, HttpReply

OPERATION_KEY = "personasim_operation"


def line_operation(line: dict[str, Any]) -> str:
    """A batch line has no operation header: the operation is `body.metadata.personasim_operation`,
    else the custom_id's text after its last "|" (as in "pair-7|respond"), else ""."""
    metadata = line["body"].get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get(OPERATION_KEY), str):
        return str(metadata[OPERATION_KEY])
    custom_id = line["custom_id"]
    return custom_id.rpartition("|")[2] if "|" in custom_id else ""


def _error(code: str, message: str, param: str | None = None, line: int | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def _line_error(number: int, line: Any, endpoint: str, seen: set[str], models: set[str]) -> dict[str, Any] | None:
    """The first thing wrong with one parsed input line, or None; notes its custom_id and model."""
    if not isinstance(line, dict):
        return _error("invalid_json_line", "This line is not parseable as valid JSON.", None, number)
    custom_id, body = line.get("custom_id"), line.get("body")
    if not isinstance(custom_id, str) or not custom_id:
        return _error("missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id", number)
    if custom_id in seen:
        return _error("duplicate_custom_id", f"The custom_id '{custom_id}' is duplicated.", "custom_id", number)
    seen.add(custom_id)
    if line.get("method") != "POST":
        return _error("invalid_method", "The method must be 'POST'.", "method", number)
    if line.get("url") != endpoint:
        return _error("url_mismatch", f"The url must be the batch's endpoint '{endpoint}'.", "url", number)
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str):
        return _error("missing_required_parameter", "Missing required parameter: 'body.model'.", "body.model", number)
    if models and model not in models:
        return _error("model_mismatch", "A batch input file may contain requests for only one model.",
                      "body.model", number)
    models.add(model)
    return None


def check_input(data: bytes, endpoint: str, max_requests: int,
                max_bytes: int) -> tuple[list[dict[str, Any]], str | None, list[dict[str, Any]]]:
    """An input file's request lines, their model and the validation errors (none: the batch can run)."""
    if len(data) > max_bytes:
        return [], None, [_error("file_too_large", f"The input file is larger than {max_bytes} bytes.")]
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, text in enumerate(data.decode(errors="replace").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            line = None
        error = _line_error(number, line, endpoint, seen, models)
        if error:
            errors.append(error)
        else:
            lines.append(line)
    if not lines and not errors:
        errors.append(_error("empty_file", "The input file is empty."))
    elif len(lines) + len(errors) > max_requests:
        errors.append(_error("too_many_tasks", f"A batch may contain at most {max_requests} requests."))
    return lines, next(iter(models), None), errors


def result_line(line_id: str, request_id: str, custom_id: str, outcome: HttpReply | Fault) -> dict[str, Any]:
    """The output or error file line of a request that ran; the caller tells them apart by status."""
    if isinstance(outcome, Fault):
        return skipped_line(line_id, custom_id, "request_timeout", "The request to the model timed out.")
    return {"id": line_id, "custom_id": custom_id, "error": None,
            "response": {"status_code": outcome.status, "request_id": request_id, "body": outcome.body}}


def skipped_line(line_id: str, custom_id: str, code: str, message: str) -> dict[str, Any]:
    """The error file line of a request without an HTTP answer (timed out, expired, cancelled)."""
    return {"id": line_id, "custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}
