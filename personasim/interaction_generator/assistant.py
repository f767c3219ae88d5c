"""The assistant under simulation: one model, or a weighted pool with one model per conversation."""

from __future__ import annotations

import random
import threading

from personasim.interaction_generator.messages import Message
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.rng import weighted_choice

DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant."


class AssistantModel:
    """`lock_model` picks a pool model for the calling thread's conversation; `respond` uses it."""

    def __init__(self, model_pool: list[tuple[LLMClient, float]], seed: int = 0) -> None:
        if not model_pool or sum(w for _, w in model_pool) <= 0:
            raise ValueError("model_pool needs at least one model with a positive weight")
        self.model_pool = model_pool
        self._local = threading.local()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def lock_model(self, rng: random.Random | None = None) -> LLMClient:
        """Choose the model for this thread's conversation by weight and keep it until unlock."""
        clients = [c for c, _ in self.model_pool]
        weights = [w for _, w in self.model_pool]
        if rng is None:
            with self._rng_lock:
                chosen = weighted_choice(self._rng, clients, weights)
        else:
            chosen = weighted_choice(rng, clients, weights)
        self._local.client = chosen
        return chosen

    def unlock_model(self) -> None:
        self._local.client = None

    @property
    def locked_client(self) -> LLMClient | None:
        return getattr(self._local, "client", None)

    def respond(self, user_query: str, conversation_history: list[Message],
                system_prompt: str | None = None) -> str:
        """Answer `user_query` given the earlier messages (which do not include it)."""
        client = self.locked_client
        if client is None:  # called outside a conversation: a one-off answer from a drawn model
            client = self.lock_model()
            self.unlock_model()
        messages = [{"role": "system", "content": system_prompt or DEFAULT_SYSTEM_PROMPT}]
        messages += [{"role": m.role, "content": m.content} for m in conversation_history]
        messages.append({"role": "user", "content": user_query})
        first = conversation_history[0].content if conversation_history else user_query
        return client.complete(messages, operation=op.RESPOND, context={
            "user_text": user_query, "first_user_text": first, "turn": len(conversation_history) // 2 + 1})
