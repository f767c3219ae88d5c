"""The user simulator: plays the persona, asks a follow-up, or says it is satisfied."""

from __future__ import annotations

from personasim.errors import LLMCallError
from personasim.interaction_generator.messages import Message
from personasim.llm import operations as op
from personasim.llm.client import LLMClient
from personasim.style_transfer import format_persona

_SYSTEM = (
    "You play a real person talking to an AI assistant. Stay in character: write exactly as this person "
    "writes (style, tone, length, technical level).\n\nThe person:\n{persona}\n\n"
    "Read the conversation and write the person's next message only: a natural follow-up (a clarification, "
    "a deeper question, a doubt, a related need)."
)
_MAY_STOP = f" If the person's need is fully met and they would stop here, reply with exactly {op.SATISFIED}."
_MUST_GO_ON = " The person is not done yet: you must write a follow-up message."
_ATTEMPTS = 3


def _clean(text: str) -> str:
    text = text.strip()
    for prefix in ("User:", "user:", "Me:"):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
    return text.strip('"').strip()


class UserFeedbackModel:
    def __init__(self, llm_client: LLMClient, min_turns: int = 2, max_turns: int = 5) -> None:
        self.llm = llm_client
        self.min_turns = min_turns
        self.max_turns = max_turns

    def generate_feedback(self, persona_features: dict[str, str], conversation_history: list[Message],
                          assistant_response: str, current_turn: int, target_turns: int) -> str | None:
        """The next user message, or None when the conversation should end.

        It ends at `target_turns` (capped by max_turns); before that the persona may stop once
        `min_turns` is reached; before `min_turns` it always follows up.
        """
        if current_turn >= min(target_turns, self.max_turns):
            return None
        may_stop = current_turn >= self.min_turns
        transcript = "\n\n".join(
            f"{'PERSON' if m.role == 'user' else 'ASSISTANT'}: {m.metadata.get('clean_text', m.content)}"
            for m in conversation_history
        )
        if not conversation_history or conversation_history[-1].content != assistant_response:
            transcript += f"\n\nASSISTANT: {assistant_response}"
        system = _SYSTEM.format(persona=format_persona(persona_features)) + (_MAY_STOP if may_stop else _MUST_GO_ON)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": transcript}]
        first = next((m.metadata.get("clean_text", m.content) for m in conversation_history if m.role == "user"), "")
        context = {"persona_features": persona_features, "assistant_response": assistant_response,
                   "first_user_text": first, "turn": current_turn, "may_stop": may_stop}
        for _ in range(_ATTEMPTS):
            reply = self.llm.complete(messages, operation=op.FOLLOW_UP, context=context)
            if op.SATISFIED in reply:
                if may_stop:
                    return None
                reply = reply.replace(op.SATISFIED, "")
            reply = _clean(reply)
            if reply:
                return reply
        raise LLMCallError(f"user_simulator gave no follow-up in {_ATTEMPTS} tries before min_turns "
                           f"({self.min_turns}) was reached")
