"""The `local` provider: a llama.cpp server personasim starts itself, called like any endpoint."""

from __future__ import annotations

import dataclasses

from personasim.config import Connection, ModelSpec
from personasim.llm.local_server import LocalModelServer
from personasim.llm.openai_backend import OpenAIBackend
from personasim.llm.types import Completion, Prompt


class LocalBackend:
    provider = "local"

    def __init__(self, model: str, parallel: int) -> None:
        self.server = LocalModelServer(model, parallel=parallel)
        try:
            self._http = OpenAIBackend(Connection(base_url=self.server.base_url), model)
        except BaseException:
            self.server.stop()
            raise
        self.model_name = self.server.model_path.name
        self.context_tokens = self.server.context_tokens  # a slot's context: conversations end before outgrowing it

    def complete(self, prompt: Prompt, model: ModelSpec) -> Completion:
        completion = self._http.complete(prompt, model)
        return dataclasses.replace(completion, model=self.model_name, provider=self.provider)

    def close(self) -> None:
        self._http.close()
        self.server.stop()
