"""personasim: synthetic multi-turn conversations for LLM personalization."""

from personasim.config import PersonasimConfig, load_config
from personasim.errors import ConfigError, InputError, LLMCallError, PersonasimError, StorageError

__all__ = [
    "ConfigError",
    "InputError",
    "LLMCallError",
    "PersonasimConfig",
    "PersonasimError",
    "StorageError",
    "load_config",
]
__version__ = "0.1.0"
