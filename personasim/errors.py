"""Exception types, one per kind of thing a user must fix or a run must record."""

from __future__ import annotations


class PersonasimError(Exception):
    """Base for every error this package raises on purpose."""


class ConfigError(PersonasimError, ValueError):
    """The configuration is invalid; the message names the file and key."""


class InputError(PersonasimError, ValueError):
    """A persona/query input is invalid; the message names the file, row and field."""


class LLMCallError(PersonasimError):
    """An LLM call failed for good: after its retries (transient), or at once (`permanent`: a 4xx,
    context length, content filter), which no retry of the pair can mend."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ContextExceeded(LLMCallError):
    """A request that does not fit its model's context window (the endpoint said so, or its
    configured `context_tokens` leaves no room for the reply): a conversation ends there."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class StorageError(PersonasimError, OSError):
    """Interactions could not be stored durably."""
