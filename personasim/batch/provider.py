"""One endpoint's Files and Batches API (OpenAI's wire format, also Azure OpenAI's and other
OpenAI-compatible providers'), through the official client, with the run's retry policy."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import openai
from openai.types import Batch
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from personasim.config import RetryPolicy
from personasim.errors import LLMCallError
from personasim.llm.client import describe_failure
from personasim.llm.retry import is_transient, wait_retry_after_or_backoff

log = logging.getLogger("personasim.batch")

CHAT = "/v1/chat/completions"
ENDED = ("completed", "failed", "expired", "cancelled")
T = TypeVar("T")


class BatchEndpoint:
    """Upload a batch file, create its batch, find it again, poll it, read its results."""

    def __init__(self, client: openai.OpenAI, retry: RetryPolicy, where: str, completion_window: str = "24h") -> None:
        self.client = client
        self.retry = retry
        self.where = where
        self.completion_window = completion_window

    def _call(self, what: str, action: Callable[[], T]) -> T:
        """An API call, retried while the failure is transient; LLMCallError once it cannot be."""
        retrying = Retrying(retry=retry_if_exception(is_transient), stop=stop_after_attempt(self.retry.max_retries + 1),
                            wait=wait_retry_after_or_backoff(maximum=self.retry.max_wait), reraise=True)
        try:
            return retrying(action)
        except Exception as exc:  # noqa: BLE001 - one clear error; the client's messages carry no key
            raise LLMCallError(f"batch API of {self.where}: {what}: {describe_failure(exc)}",
                               permanent=not is_transient(exc)) from None

    def upload(self, name: str, path: Path) -> str:
        """The input file's id; the file is streamed from disk (a try again starts it over)."""
        with open(path, "rb") as handle:
            return self._call(f"uploading {name}",
                              lambda: self.client.files.create(file=(name, handle), purpose="batch")).id

    def create(self, file_id: str, metadata: dict[str, str]) -> Batch:
        return self._call(f"creating the batch of {file_id}", lambda: self.client.batches.create(
            input_file_id=file_id, endpoint=CHAT, completion_window=self.completion_window,  # type: ignore[arg-type]
            metadata=metadata))

    def find(self, file_id: str, since: float) -> Batch | None:
        """The batch created from `file_id`, if one was (a run killed between creating it and
        recording it); batches are listed newest first, so the search stops at older ones."""
        def search() -> Batch | None:
            for batch in self.client.batches.list(limit=100):
                if batch.input_file_id == file_id:
                    return batch
                if batch.created_at < since - 60:
                    return None
            return None

        return self._call(f"looking for the batch of {file_id}", search)

    def retrieve(self, batch_id: str) -> Batch:
        return self._call(f"polling {batch_id}", lambda: self.client.batches.retrieve(batch_id))

    def cancel(self, batch_id: str) -> None:
        self._call(f"cancelling {batch_id}", lambda: self.client.batches.cancel(batch_id))

    def download(self, file_id: str, path: Path) -> None:
        """A result file to `path`, streamed (an output file can be hundreds of megabytes)."""
        def fetch() -> None:
            with self.client.files.with_streaming_response.content(file_id) as response, open(path, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)

        self._call(f"reading {file_id}", fetch)


def batch_errors(batch: Batch) -> str:
    """What a batch that failed as a whole says (its validation errors)."""
    errors: Any = batch.errors
    items = getattr(errors, "data", None) or []
    said = "; ".join(f"{e.code or 'error'}: {e.message or ''}".strip() for e in items[:3])
    return said or f"the batch ended {batch.status}"


def retry_later(batch: Batch) -> bool:
    """A batch that failed for a reason that passes (the provider's queue of enqueued tokens full)."""
    items = getattr(batch.errors, "data", None) or []
    return any((e.code or "") in ("token_limit_exceeded", "rate_limit_exceeded") for e in items)
