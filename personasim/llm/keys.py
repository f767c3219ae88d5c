"""API keys: only from the environment, checked before anything starts (no client library imported)."""

from __future__ import annotations

import os
import urllib.parse

from personasim.config import Connection, PersonasimConfig
from personasim.errors import ConfigError

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def needs_key(connection: Connection) -> bool:
    """Whether a key must be set: OpenAI's API and remote servers need one; a server on this
    machine (vLLM, Ollama, llama.cpp) accepts any."""
    host = urllib.parse.urlsplit(connection.base_url).hostname if connection.base_url else None
    return host is None or host not in _LOOPBACK


def resolve_api_key(connection: Connection, model: str) -> str:
    """The key from the environment, or ConfigError naming the variable to set."""
    key = os.environ.get(connection.api_key_env, "")
    if key:
        return key
    if needs_key(connection):
        where = connection.base_url or "the OpenAI API"
        raise ConfigError(f"model {model!r} talks to {where} but the environment variable "
                          f"{connection.api_key_env} is not set")
    return "unused"


def check_keys(config: PersonasimConfig) -> None:
    """Every role's key is in the environment (checked before anything starts)."""
    for endpoint in config.endpoints():
        if endpoint.model.provider == "openai":
            resolve_api_key(endpoint.connection, endpoint.model.model)
