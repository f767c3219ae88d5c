"""A batch's output and error files, read line by line into what each request gets next.

Every line becomes one `Result`: an answer to keep (a reply, or a failure no retry can mend, as
online), a transient failure to send again with the next round (one try spent, as the client's
retry would), a request the batch never ran (expired or cancelled: sent again, no try spent), or
a JSON schema the endpoint refused (sent again asking for any JSON object, as online).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from personasim.batch.requests import Answer, SentLine
from personasim.llm.openai_backend import parse_completion
from personasim.llm.retry import ContentFiltered, MalformedCompletion, is_transient_status, says_context_overflow

log = logging.getLogger("personasim.batch")

NOT_RUN = ("batch_expired", "batch_cancelled")  # the batch ended before the request ran

Kind = Literal["answer", "retry", "again", "schema"]


@dataclass(frozen=True)
class Result:
    custom_id: str
    kind: Kind
    answer: Answer | None = None
    reason: str = ""


def _message(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "error")
    return str(error or body)[:300]


def read_line(line: Mapping[str, Any], sent: Mapping[str, SentLine], latency_s: float) -> Result | None:
    """One line of an output or error file; None for a line of no request this upload carries."""
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or custom_id not in sent:
        return None
    model = sent[custom_id].model
    operation = custom_id.rsplit("|", 1)[-1]
    response, error = line.get("response"), line.get("error")
    if not isinstance(response, dict):
        code = error.get("code") if isinstance(error, dict) else None
        if code in NOT_RUN:
            return Result(custom_id, "again", reason=str(code))
        return Result(custom_id, "retry", reason=f"{code or 'error'}: {_message({'error': error})}")
    status = response.get("status_code")
    body = response.get("body")
    if status == 200:
        try:
            completion = parse_completion(body, model, operation)
        except MalformedCompletion as exc:
            return Result(custom_id, "retry", reason=f"MalformedCompletion: {exc}")
        except ContentFiltered as exc:
            return Result(custom_id, "answer", Answer.failed(f"ContentFiltered: {exc}", permanent=True))
        return Result(custom_id, "answer", Answer.of(replace(completion, batch=True), latency_s))
    status = status if isinstance(status, int) else 500
    message = f"HTTP {status}: {_message(body)}"
    if is_transient_status(status):
        return Result(custom_id, "retry", reason=message)
    if says_context_overflow(status, message):
        return Result(custom_id, "answer", Answer.failed(message, permanent=True, context=True))
    if status == 400 and sent[custom_id].response_type == "json_schema":
        return Result(custom_id, "schema", reason=message)
    return Result(custom_id, "answer", Answer.failed(message, permanent=True))


def read_results(lines: Iterable[str], sent: Mapping[str, SentLine], latency_s: float) -> Iterator[Result]:
    """Every line of the batch's output and error files (JSONL); a line that is not JSON is skipped
    with a warning (its request gets no answer and goes again)."""
    for raw in lines:
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            log.warning("a batch result line is not JSON: %.120s", raw)
            continue
        result = read_line(line, sent, latency_s) if isinstance(line, dict) else None
        if result is not None:
            yield result
