"""Style transfer: the seed query rewritten in the persona's voice, with `transfer_probability`."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from personasim.llm import operations as op
from personasim.llm.client import LLMClient

_SYSTEM = (
    "Rewrite the user's query as this person would type it to an AI assistant. Match their communication "
    "style, tone, preferred length and technical level. Keep the request and every concrete detail. "
    "Reply with the rewritten query only, no quotes, no preamble."
)


@dataclass(frozen=True)
class TransferResult:
    initial_query: str
    transferred: bool


def format_persona(features: dict[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in features.items())


class StyleTransfer:
    def __init__(self, llm_client: LLMClient, transfer_probability: float) -> None:
        self.llm = llm_client
        self.transfer_probability = transfer_probability

    def transfer(self, original_query: str, persona_features: dict[str, str], rng: random.Random) -> TransferResult:
        """Rewrite with the configured probability; otherwise the query is kept verbatim."""
        if rng.random() >= self.transfer_probability:
            return TransferResult(original_query, transferred=False)
        messages = [
            {"role": "system", "content": f"{_SYSTEM}\n\nThe person:\n{format_persona(persona_features)}"},
            {"role": "user", "content": json.dumps({"query": original_query}, ensure_ascii=False)},
        ]
        text = self.llm.complete(messages, operation=op.REWRITE_QUERY,
                                 context={"query": original_query, "persona_features": persona_features})
        return TransferResult(text.strip().strip('"').strip() or original_query, transferred=True)
