"""Builds the clients for the four roles from a config, sharing one HTTP pool per endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from personasim.config import EndpointConfig, PersonasimConfig
from personasim.llm.client import LLMClient
from personasim.llm.offline import OfflineBackend
from personasim.llm.openai_backend import OpenAIBackend
from personasim.llm.throttle import Throttle
from personasim.llm.types import ChatBackend
from personasim.llm.usage import UsageTracker


@dataclass
class RoleClients:
    style_transfer: LLMClient
    assistant_pool: list[tuple[LLMClient, float]]
    user_simulator: LLMClient
    distractor: LLMClient
    tracker: UsageTracker

    def close(self) -> None:
        closed = set()
        for client in (self.style_transfer, self.user_simulator, self.distractor,
                       *(c for c, _ in self.assistant_pool)):
            close = getattr(client.backend, "close", None)
            if close and id(client.backend) not in closed:
                closed.add(id(client.backend))
                close()


class BackendCache:
    """One backend per distinct endpoint so roles on the same server share connections, and one
    throttle per endpoint so its limits hold across every role and thread of the run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._backends: dict[tuple, ChatBackend] = {}
        self._throttles: dict[tuple, Throttle] = {}

    def get(self, endpoint: EndpointConfig) -> ChatBackend:
        if endpoint.provider == "local":  # one server per model file, whatever the role
            key: tuple = ("local", endpoint.model)
        else:
            key = (endpoint.provider, endpoint.base_url, endpoint.api_key_env, endpoint.timeout)
        if key not in self._backends:
            if endpoint.provider == "offline":
                self._backends[key] = OfflineBackend(self.seed)
            elif endpoint.provider == "local":
                from personasim.llm.local_backend import LocalBackend

                self._backends[key] = LocalBackend(endpoint)
            else:
                self._backends[key] = OpenAIBackend(endpoint)
        return self._backends[key]

    def throttle(self, endpoint: EndpointConfig) -> Throttle:
        key = (endpoint.provider, endpoint.base_url, endpoint.api_key_env)
        if key not in self._throttles:
            self._throttles[key] = Throttle(endpoint.requests_per_minute, endpoint.tokens_per_minute,
                                            endpoint.max_concurrent_requests)
        return self._throttles[key]


def build_clients(config: PersonasimConfig, tracker: UsageTracker | None = None) -> RoleClients:
    tracker = tracker or UsageTracker()
    cache = BackendCache(config.seed)
    llm = config.llm

    def client(module: str, endpoint: EndpointConfig) -> LLMClient:
        return LLMClient(module, endpoint, cache.get(endpoint), tracker, cache.throttle(endpoint))

    return RoleClients(
        style_transfer=client("style_transfer", llm.style_transfer),
        assistant_pool=[(client("assistant", m), m.weight) for m in llm.assistant.model_pool],
        user_simulator=client("user_simulator", llm.user_simulator),
        distractor=client("distractor", llm.distractor),
        tracker=tracker,
    )
