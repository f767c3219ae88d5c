"""Test helpers shipped with the package: a local OpenAI-compatible server and config builders."""

from personasim.testing.fake_openai import Fault, FakeOpenAIServer


def endpoint_config(base_url: str, *, model: str = "fake-model", timeout: float = 5.0, max_retries: int = 4,
                    max_retry_wait: float = 2.0, **overrides) -> dict:
    """Every role pointed at one OpenAI-compatible server (key from PERSONASIM_TEST_KEY)."""
    default = {"provider": "openai", "base_url": base_url, "model": model, "api_key_env": "PERSONASIM_TEST_KEY",
               "timeout": timeout, "max_retries": max_retries, "max_retry_wait": max_retry_wait, **overrides}
    return {"default": default}


__all__ = ["Fault", "FakeOpenAIServer", "endpoint_config"]
