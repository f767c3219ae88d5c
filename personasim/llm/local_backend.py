"""The `local` provider: a llama.cpp server personasim starts itself, called like any endpoint."""

from __future__ import annotations

import dataclasses

from personasim.config import EndpointConfig
from personasim.llm.local_server import LocalModelServer
from personasim.llm.openai_backend import OpenAIBackend
from personasim.llm.types import ChatRequest, Completion


class LocalBackend:
    provider = "local"

    def __init__(self, endpoint: EndpointConfig) -> None:
        self.server = LocalModelServer(endpoint.model, parallel=endpoint.max_concurrent_requests or 4)
        try:
            self._http = OpenAIBackend(endpoint.model_copy(update={"provider": "openai",
                                                                   "base_url": self.server.base_url}))
        except BaseException:
            self.server.stop()
            raise
        self.model_name = self.server.model_path.name

    def complete(self, request: ChatRequest) -> Completion:
        completion = self._http.complete(request)
        return dataclasses.replace(completion, model=self.model_name, provider=self.provider)

    def close(self) -> None:
        self._http.close()
        self.server.stop()
