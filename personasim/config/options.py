"""Run options: how the models are reached and how hard to try. None of it changes what is generated.

Kept apart from the generation spec so the dataset's fingerprint is the spec's hash alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from personasim.config.spec import ModelSpec, Section


class Connection(Section):
    """How one role's model is reached. The API key is never here: only the variable that holds it."""

    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = Field(60.0, gt=0, le=3600)
    # Client-side limits, per endpoint (base_url + key), shared by all roles; set them in llm.default.
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    max_concurrent_requests: int | None = Field(None, ge=1, le=10_000)
    # How a role that answers in JSON asks for it: a JSON schema the endpoint decodes to (llama.cpp,
    # vLLM, Ollama and OpenAI do), any JSON object, or only the instructions.
    structured_outputs: Literal["json_schema", "json_object", "off"] = "json_schema"
    # The model's context window in tokens, when the endpoint does not say: a conversation about to
    # outgrow it ends (termination `context_limit`) instead of failing its pair.
    context_tokens: int | None = Field(None, ge=256, le=10_000_000)
    # In a batch run: `batch` sends this endpoint's calls through its batch API (OpenAI's wire format),
    # `online` calls it as each pair needs it (a provider without a batch API); empty: the run's mode.
    mode: Literal["online", "batch"] | None = None


class RoleConnections(Section):
    style_transfer: Connection = Field(default_factory=Connection)
    assistant: tuple[Connection, ...] = Field(default=(Connection(),), min_length=1)
    user_simulator: Connection = Field(default_factory=Connection)
    distractor: Connection = Field(default_factory=Connection)
    formulator: Connection = Field(default_factory=Connection)
    judges: tuple[Connection, ...] = ()

    def all(self) -> list[Connection]:
        return [self.style_transfer, *self.assistant, self.user_simulator, self.distractor, self.formulator,
                *self.judges]


class RetryPolicy(Section):
    """The one retry policy of a run, for the client and the orchestrator alike.

    A transient error (429, 5xx, timeout, dropped connection, malformed body) is retried per call
    up to `max_retries` times, waiting as the server says (Retry-After) or with exponential
    backoff and jitter, at most `max_wait` seconds. A pair whose call still fails is tried again
    from the start, `pair_attempts` times in all. A permanent error (400, 401, 403, 404, 422,
    context length, content filter) fails the pair at once.
    """

    max_retries: int = Field(5, ge=0, le=50)
    max_wait: float = Field(60.0, gt=0, le=600)
    pair_attempts: int = Field(2, ge=1, le=10)
    supplement_rounds: int = Field(0, ge=0, le=10, description="rounds, after a batch, over its pairs that "
                                                               "failed for a transient reason")


class BudgetConfig(Section):
    """A spending cap for a run: once reached, no new pair starts (prices from `pricing`)."""

    max_cost_usd: float | None = Field(None, gt=0)


class BatchConfig(Section):
    """How a batch run (`--mode batch`) talks to the batch APIs; none of it changes what is generated."""

    mode: Literal["online", "batch"] = "online"  # the run's mode when the command or flow does not say
    poll_s: float = Field(5.0, gt=0, le=3600)  # the first wait before a batch is polled; it grows by half
    max_poll_s: float = Field(120.0, gt=0, le=3600)  # each time, up to this
    max_requests_per_file: int = Field(50_000, ge=1, le=50_000)  # the API's limits per batch file
    max_bytes_per_file: int = Field(190_000_000, ge=1_000, le=200_000_000)
    completion_window: Literal["24h"] = "24h"


class ExportConfig(Section):
    """What the PersonaGym-format export writes of each sample (its training_data.format)."""

    include_persona: bool = True
    include_trajectory: bool = True
    include_distractor_versions: bool = True
    include_full_conversation: bool = True
    include_metadata: bool = True


class SplitConfig(Section):
    """Train/validation/test shares; a persona's samples all land in one split."""

    train: float = Field(0.8, ge=0.0, le=1.0)
    validation: float = Field(0.1, ge=0.0, le=1.0)
    test: float = Field(0.1, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1.0, got {total:g}")
        return self


class PriceConfig(Section):
    """USD per one million tokens, and what a provider takes off for cached input and batch calls."""

    input_per_1m: float = Field(ge=0.0)
    output_per_1m: float = Field(ge=0.0)
    # input tokens the provider served from its prompt cache; None: no cache price known, the full input price
    cached_input_per_1m: float | None = Field(None, ge=0.0)
    # the share a batch API takes off every token (OpenAI, Azure OpenAI and Anthropic: half)
    batch_discount: float = Field(0.5, ge=0.0, lt=1.0)


@dataclass(frozen=True)
class Endpoint:
    """What a role's client needs: the model it writes with and how it is reached."""

    role: str
    model: ModelSpec
    connection: Connection
