"""A pair of a batch run, replayed: the engine runs the pair's conversation from the start each
round, every call it has an answer for answered from the journal, and stops at the first it has
none for, which goes into the next batch.

The pair's code is the online code, so contracts, repairs, retries, noise, stops and storage are
the same, and so is the conversation for the same seed and replies. Nothing about a waiting pair
stays in memory between rounds: its answers are in the journal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from personasim.batch.journal import Journal
from personasim.batch.provider import BatchEndpoint
from personasim.batch.requests import Answer, BatchRequest, NeedsReply, custom_id_for, request_hash
from personasim.config import ModelSpec, RetryPolicy
from personasim.errors import ContextExceeded, LLMCallError, PersonasimError
from personasim.llm.client import LLMClient
from personasim.llm.factory import RoleClients
from personasim.llm.ledger import UsageLog
from personasim.llm.openai_backend import OpenAIBackend
from personasim.llm.types import Completion, Prompt


class JournalConflict(PersonasimError):
    """A replayed call asks otherwise than when it was sent: the prompts or models changed mid-run."""


class Routes:
    """Which roles' calls go through a batch API in this run, and to which endpoint.

    An endpoint's `mode` in the config decides (else the run's): `batch` for an OpenAI-compatible
    endpoint with a batch API, `online` for one without (called as the pair needs it, its answer
    journaled all the same). Offline and local models are always called online.
    """

    def __init__(self, clients: RoleClients, mode: str, retry: RetryPolicy, completion_window: str = "24h") -> None:
        self.mode = mode
        self.endpoints: dict[str, BatchEndpoint] = {}
        for client in clients.all():
            key = self.endpoint(client)
            if key is not None and key not in self.endpoints:
                assert isinstance(client.backend, OpenAIBackend)  # endpoint() names only these
                self.endpoints[key] = BatchEndpoint(client.backend.client, retry, client.backend.where,
                                                    completion_window)

    def endpoint(self, client: LLMClient) -> str | None:
        """The batch endpoint of the client's calls; None: called online."""
        backend = client.backend
        if (client.connection.mode or self.mode) != "batch" or not isinstance(backend, OpenAIBackend):
            return None
        return f"{backend.where}|{client.connection.api_key_env}"


_thread = threading.local()  # treading: this thread's replay re-treads calls answered in earlier rounds


class _Retread(logging.Filter):
    """Drops what a pair logs while its replay re-treads ground covered in an earlier round (it was
    logged then): a run's log says each retry, fallback and failure once, not once per round."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_thread, "treading", False)


@contextmanager
def quiet_retreads() -> Iterator[None]:
    retread, loggers = _Retread(), [logging.getLogger(n) for n in ("personasim.engine", "personasim.llm")]
    for logger in loggers:
        logger.addFilter(retread)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(retread)


class PairReplay:
    """One replay of one pair: its calls in order, each answered from the journal, made online,
    or asked for (NeedsReply). Used as a context manager around the pair's run in this thread."""

    def __init__(self, interaction_id: str, journal: Journal, routes: Routes, paid: UsageLog) -> None:
        self.interaction_id = interaction_id
        self.journal = journal
        self.routes = routes
        self.paid = paid
        self.known = journal.known(interaction_id)
        self.last_known = max(self.known, default=0)
        self.seq = 0

    def __enter__(self) -> PairReplay:
        _thread.treading = self.last_known > 0
        return self

    def __exit__(self, *exc: object) -> None:
        _thread.treading = False

    def answer(self, client: LLMClient, prompt: Prompt, spec: ModelSpec,
               call: Callable[[], tuple[Completion, float]]) -> tuple[Completion, float]:
        self.seq += 1
        digest = request_hash(spec.model, prompt.operation, prompt.messages)
        custom_id = custom_id_for(self.interaction_id, self.seq, prompt.operation)
        known = self.known.get(self.seq)
        _thread.treading = self.seq < self.last_known  # past the last answer known, all is new this round
        if known is not None:
            if known.request_hash != digest:
                raise JournalConflict(
                    f"batch journal {self.journal.path}: call {self.seq} of pair {self.interaction_id} "
                    f"({client.where(prompt)}) asks otherwise than when it was sent: the prompts or models changed "
                    "since the run began. Finish it with the version and config that began it, or delete the "
                    "journal to begin again (its answered calls are then paid for again)")
            if known.answer is None:
                raise NeedsReply(custom_id)
            return known.answer.completion(client.where(prompt), spec.model), known.answer.latency_s
        endpoint = self.routes.endpoint(client)
        request = BatchRequest(custom_id, self.interaction_id, self.seq, digest, endpoint or "online", spec.model,
                               client.role, prompt.operation, None, {})
        if endpoint is None:
            return self._online(client, prompt, request, call)
        assert isinstance(client.backend, OpenAIBackend)  # Routes sends only these to a batch endpoint
        self.journal.ask(replace(request, body=client.backend.body(prompt, spec)))
        raise NeedsReply(custom_id)

    def _online(self, client: LLMClient, prompt: Prompt, request: BatchRequest,
                call: Callable[[], tuple[Completion, float]]) -> tuple[Completion, float]:
        """A call to an endpoint without a batch API: made now, paid now, journaled for the replays to come."""
        try:
            completion, latency = call()
        except LLMCallError as exc:
            # kept as a batch line's error is (the reason alone): a replay raises it again as the client did
            reason = str(exc).removeprefix(f"{client.where(prompt)}: ").removeprefix("context_limit: ")
            self.journal.record(request, Answer.failed(reason, permanent=exc.permanent,
                                                       context=isinstance(exc, ContextExceeded), batch=False))
            raise
        self.journal.record(request, Answer.of(completion, latency))
        self.paid.add(client.usage(prompt.operation, completion, latency, self.interaction_id, None))
        return completion, latency
