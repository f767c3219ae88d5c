"""What the fake server says: plausible replies per personasim operation, JSON schema instances,
and its rough token count (one token per word, so tests can predict usage)."""

from __future__ import annotations

import json
import time
from typing import Any


def approx_tokens(text: str) -> int:
    return max(1, len(text.split()))


def content_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts (both are the API's)."""
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def message_tokens(messages: list[dict[str, Any]]) -> list[int]:
    """Each message's token count: prompt tokens and prompt-cache prefixes are counted alike."""
    return [approx_tokens(content_text(m.get("content"))) for m in messages]


def _user_payload(body: dict[str, Any]) -> tuple[str, Any]:
    """The last user message, and its JSON payload when the client sent JSON."""
    messages = body.get("messages") or []
    text = next((content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    try:
        return text, json.loads(text)
    except (TypeError, ValueError):
        return text, None


def schema_instance(schema: Any) -> Any:
    """A value valid against a (simple) JSON schema: what a server decoding to it would give."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: schema_instance(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [schema_instance(schema.get("items"))]
    if kind == "integer":
        low, high = schema.get("minimum", 1), schema.get("maximum", 5)
        return (low + high) // 2
    if kind == "number":
        return schema.get("minimum", 0.5)
    if kind == "boolean":
        return True
    return "value"


def default_reply(operation: str, body: dict[str, Any], n: int) -> str:
    """Plausible text for each personasim operation, so unscripted calls succeed; under a JSON
    schema response format, an instance of the schema for an operation it knows no reply for."""
    text, payload = _user_payload(body)
    payload = payload if isinstance(payload, dict) else {}
    if operation == "rewrite_query":
        return f"{payload.get('query', text)} (in my own words)"
    if operation == "respond":
        return f"[{body.get('model')}] answer {n}: here is what to do about: {text[:80]}"
    if operation == "follow_up":
        return f"follow-up {n}: could you expand on that part?"
    if operation == "extract_intent":
        return json.dumps({"intent": "request_help", "slots": {"topic": text[:30]}, "confidence": 0.9})
    if operation == "semantic_rewrite":
        return json.dumps({"noisy_text": f"{payload.get('message', text)} umm idk", "applied_strategies": []})
    if operation == "paraphrase":
        return f"In other words, {text}"
    if operation == "formulate_system_prompt":
        traits = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in list((payload.get("persona") or {}).items())[:6])
        return (f"You are assisting a person with this profile ({traits}). Match their tone and technical level, "
                f"keep your answers to the length they prefer, and check what they already know before you go "
                f"into detail (prompt {n}).")
    form = body.get("response_format") or {}
    if form.get("type") == "json_schema":
        return json.dumps(schema_instance((form.get("json_schema") or {}).get("schema")))
    return f"reply {n}"


def chat_completion(completion_id: str, model: str, text: str, finish_reason: str, prompt: int, completion: int,
                    cached: int) -> dict[str, Any]:
    """A chat.completion body with its usage (cached tokens are part of the prompt's, as the API counts them)."""
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": cached}}}
