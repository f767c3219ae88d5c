"""Shared fixtures: a local OpenAI-compatible server and configs that point at it."""

from __future__ import annotations

import pytest

from personasim.testing import FakeOpenAIServer, endpoint_config

PERSONA = {"role": "engineer", "communication_style": "casual", "technical_level": "advanced",
           "query_length_pref": "concise", "tone": "friendly"}


@pytest.fixture
def llm_server():
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def remote_config(llm_server, monkeypatch):
    """Builds a config dict whose every role talks to `llm_server` over HTTP."""
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-0123456789abcdef")

    def build(*, distractor: dict | None = None, generation: dict | None = None, llm: dict | None = None,
              **endpoint) -> dict:
        cfg_llm = endpoint_config(llm_server.base_url, **endpoint)
        cfg_llm.update(llm or {})
        return {"seed": 7, "llm": cfg_llm,
                "distractor": distractor if distractor is not None else {"enabled": False},
                "generation": generation or {}}

    return build
