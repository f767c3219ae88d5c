"""Builds the clients for the four roles from a config, sharing one connection pool and one
throttle per endpoint, so an endpoint's limits hold across every role and thread of the run.
The formulator's client is built when a run first formulates a system prompt: a run of ready
pairs never needs its endpoint or key."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from personasim.config import Connection, Endpoint, PersonasimConfig
from personasim.llm.client import LLMClient
from personasim.llm.offline import OfflineBackend
from personasim.llm.openai_backend import OpenAIBackend
from personasim.llm.throttle import Throttle
from personasim.llm.types import ChatBackend


@dataclass
class RoleClients:
    style_transfer: LLMClient
    assistant_pool: list[tuple[LLMClient, float]]
    user_simulator: LLMClient
    distractor: LLMClient
    judges: list[LLMClient] = field(default_factory=list)
    config: PersonasimConfig | None = None
    backends: _Backends | None = None
    _formulator: LLMClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def formulator(self) -> LLMClient:
        """The formulator's client, built on first use on the run's shared endpoints."""
        with self._lock:
            if self._formulator is None:
                assert self.config is not None and self.backends is not None, "clients built without a config"
                endpoint = self.config.formulator_endpoint()
                self._formulator = LLMClient(endpoint, self.backends.backend(endpoint), self.config.retry,
                                             self.backends.throttle(endpoint))
            return self._formulator

    def all(self) -> list[LLMClient]:
        extra = [self._formulator] if self._formulator is not None else []
        return [self.style_transfer, *(c for c, _ in self.assistant_pool), self.user_simulator, self.distractor,
                *self.judges, *extra]

    def close(self) -> None:
        for backend in {id(c.backend): c.backend for c in self.all()}.values():
            backend.close()


def _endpoint_key(connection: Connection) -> tuple[str | None, str]:
    return connection.base_url, connection.api_key_env


class _Backends:
    """One backend per distinct endpoint, one throttle per endpoint."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._backends: dict[tuple[object, ...], ChatBackend] = {}
        self._throttles: dict[tuple[object, ...], Throttle] = {}

    def backend(self, endpoint: Endpoint) -> ChatBackend:
        provider, link = endpoint.model.provider, endpoint.connection
        key: tuple[object, ...] = (provider, endpoint.model.model) if provider == "local" else (
            provider, *_endpoint_key(link), link.timeout, link.structured_outputs)
        if key not in self._backends:
            if provider == "offline":
                self._backends[key] = OfflineBackend(self.seed)
            elif provider == "local":
                from personasim.llm.local_backend import LocalBackend

                self._backends[key] = LocalBackend(endpoint.model.model, link.max_concurrent_requests or 4)
            else:
                self._backends[key] = OpenAIBackend(link, endpoint.model.model)
        return self._backends[key]

    def throttle(self, endpoint: Endpoint) -> Throttle:
        link = endpoint.connection
        key = (endpoint.model.provider, *_endpoint_key(link))
        if key not in self._throttles:
            self._throttles[key] = Throttle(link.requests_per_minute, link.tokens_per_minute,
                                            link.max_concurrent_requests)
        return self._throttles[key]


def build_clients(config: PersonasimConfig) -> RoleClients:
    backends = _Backends(config.seed)
    clients = {}
    pool: list[LLMClient] = []
    judges: list[LLMClient] = []
    for endpoint in config.endpoints():
        client = LLMClient(endpoint, backends.backend(endpoint), config.retry, backends.throttle(endpoint))
        if endpoint.role in ("assistant", "judge"):
            (pool if endpoint.role == "assistant" else judges).append(client)
        else:
            clients[endpoint.role] = client
    weights = [m.weight for m in config.spec.models.assistant]
    return RoleClients(clients["style_transfer"], list(zip(pool, weights, strict=True)), clients["user_simulator"],
                       clients["distractor"], judges, config, backends)


def judge_clients(config: PersonasimConfig) -> list[LLMClient]:
    """Clients for the config's judges alone (judging a dataset needs no other role's endpoint or key)."""
    backends = _Backends(config.seed)
    return [LLMClient(e, backends.backend(e), config.retry, backends.throttle(e)) for e in config.endpoints()
            if e.role == "judge"]
