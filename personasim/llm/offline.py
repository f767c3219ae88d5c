"""The offline backend: each role's own stand-in text, deterministic under a seed, no network.

It stands in for every role so the whole pipeline runs on a fresh machine without a key.
Every completion says `provider: offline`, so nobody mistakes its text for model output.
"""

from __future__ import annotations

import json
import math
import random

from personasim.config import ModelSpec
from personasim.llm.types import Completion, Prompt
from personasim.rng import derive_seed


def approx_tokens(text: str) -> int:
    """About four characters a token, the usual rule of thumb for English."""
    return max(1, math.ceil(len(text) / 4))


class OfflineBackend:
    provider = "offline"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def complete(self, prompt: Prompt, model: ModelSpec) -> Completion:
        rendered = json.dumps(prompt.messages, sort_keys=True)
        text = prompt.offline(random.Random(derive_seed(self.seed, model.model, prompt.operation, rendered)))
        return Completion(text=text, input_tokens=sum(approx_tokens(m["content"]) for m in prompt.messages),
                          output_tokens=approx_tokens(text), model=model.model, provider=self.provider,
                          finish_reason="stop")

    def close(self) -> None:
        """Nothing to release."""
