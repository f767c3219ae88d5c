"""Test helpers shipped with the package: a local OpenAI-compatible server and config builders."""

from typing import Any

from personasim.testing.fake_openai import Cut, FakeOpenAIServer, Fault


def server_config(base_url: str, *, model: str = "fake-model", timeout: float = 5.0, max_retries: int = 4,
                  max_retry_wait: float = 2.0, pair_attempts: int = 2, **endpoint: Any) -> dict[str, Any]:
    """The `llm` and `retry` sections of a config whose every role talks to one OpenAI-compatible
    server (key from PERSONASIM_TEST_KEY)."""
    default = {"provider": "openai", "base_url": base_url, "model": model, "api_key_env": "PERSONASIM_TEST_KEY",
               "timeout": timeout, **endpoint}
    return {"llm": {"default": default},
            "retry": {"max_retries": max_retries, "max_wait": max_retry_wait, "pair_attempts": pair_attempts}}


__all__ = ["Cut", "Fault", "FakeOpenAIServer", "server_config"]
