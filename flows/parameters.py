"""The parameters of a run, declared once as annotated types.

The flow's signature uses them, so Prefect's parameter schema carries each limit (the UI form
and the server refuse `max_concurrency=0` when a run is created, not inside it); `described`
copies each description into the flow's docstring, where Prefect reads parameter descriptions;
and `RunParameters`, what the library validates, is made of the same types.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

from personasim.config import PersonasimConfig, load_config, with_local_model, with_request_limit
from personasim.flows.runners import TaskRunnerName

InputPath = Annotated[str, Field(min_length=1, description="Pair file (JSONL, JSON, CSV, Parquet) or a directory "
                                 "of them; a relative path is read from the deployment's working directory.")]
DatasetRoot = Annotated[str, Field(min_length=1, description="Dataset root: a local directory (relative to the "
                                   "working directory) or an object-storage URL such as s3://bucket/prefix.")]
ConfigPath = Annotated[str | None, Field(description="YAML config; empty: the offline backend (no API key).")]
Backend = Annotated[Literal["config", "local"], Field(
    description="'config': the models the config names; 'local': every role on a llama.cpp model started for "
                "the run.")]
LocalModel = Annotated[str, Field(min_length=1, description="With backend 'local': 'smollm2' (bundled) or a GGUF "
                                  "file path.")]
RunName = Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                                      description="A name for the run id (letters, digits, _ . -).")]
Seed = Annotated[int | None, Field(description="Overrides the config's seed (a new seed on an existing "
                                   "dataset needs new_variant).")]
MaxConcurrency = Annotated[int, Field(ge=1, le=1024, description="LLM calls in flight at once, per endpoint.")]
Limit = Annotated[int | None, Field(ge=1, description="Only the first N pairs of the input.")]
PairsPerTask = Annotated[int | None, Field(ge=1, le=10_000, description="Pairs per Prefect task run; empty: chosen "
                                           "from the pairs and the concurrency (at most 200 task runs).")]
WaveSize = Annotated[int | None, Field(ge=1, le=100_000, description="Pairs per committed Parquet wave; empty: "
                                       "twice the concurrency.")]
TaskRunnerChoice = Annotated[TaskRunnerName, Field(description="'thread' (the flow's process), 'dask' or 'ray' (worker "
                                             "processes, local or on a cluster).")]
RunnerAddress = Annotated[str | None, Field(description="An existing Dask scheduler (tcp://host:8786) or Ray cluster "
                                            "(ray://host:10001); empty: a local cluster started for the run.")]
Workers = Annotated[int | None, Field(ge=1, le=1024, description="Worker processes of a local Dask or Ray cluster; "
                                      "empty: one per core.")]
MaxCost = Annotated[float | None, Field(gt=0, description="USD: once the run has spent it, no new pair starts "
                                        "(needs prices for every model in the config).")]
NewVariant = Annotated[bool, Field(description="Add the run to a dataset made with another seed or config, as a "
                                   "variant partitioned and counted apart.")]
ShowProgress = Annotated[bool, Field(description="Live progress: a display in a terminal, a log line every few "
                                     "seconds elsewhere.")]
MaxFailureRatio = Annotated[float | None, Field(ge=0, le=1, description="The run ends Failed when more than this "
                                                "share of its pairs failed; empty: only when none succeeded.")]

MAX_TASK_RUNS = 200  # pair tasks per run when pairs_per_task is chosen for you
F = TypeVar("F", bound=Callable[..., Any])


def described(fn: F) -> F:
    """Append an `Args:` section with each parameter's description to `fn`'s docstring (Prefect
    shows docstring descriptions in the UI form; it drops those inside `Annotated`)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    lines = []
    for name, hint in hints.items():
        info = next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, FieldInfo)), None)
        if info is not None and info.description:
            lines.append(f"    {name}: {info.description}")
    fn.__doc__ = f"{fn.__doc__ or ''}\n\n    Args:\n" + "\n".join(lines) + "\n"
    return fn


class RunParameters(BaseModel):
    """What a run takes; validated before any work starts (also for runs started from the UI)."""

    model_config = ConfigDict(extra="forbid")

    input_path: InputPath
    dataset_root: DatasetRoot = "output/dataset"
    config_path: ConfigPath = None
    backend: Backend = "config"
    local_model: LocalModel = "smollm2"
    run_name: RunName = None
    seed: Seed = None
    max_concurrency: MaxConcurrency = 16
    limit: Limit = None
    pairs_per_task: PairsPerTask = None
    wave_size: WaveSize = None
    task_runner: TaskRunnerChoice = "thread"
    runner_address: RunnerAddress = None
    workers: Workers = None
    max_cost: MaxCost = None
    new_variant: NewVariant = False
    show_progress: ShowProgress = True
    max_failure_ratio: MaxFailureRatio = None

    @model_validator(mode="after")
    def _cluster_options_need_a_cluster(self) -> RunParameters:
        if self.task_runner == "thread" and (self.runner_address or self.workers):
            raise ValueError("runner_address and workers are for task_runner 'dask' or 'ray'")
        if self.runner_address and self.workers:
            raise ValueError("workers sizes a local cluster; an existing one at runner_address has its own")
        return self

    def config(self) -> PersonasimConfig:
        """The config file with this run's overrides (seed, local model, concurrency) applied."""
        config = load_config(self.config_path)
        if self.seed is not None:
            config = config.with_seed(self.seed)
        if self.backend == "local":
            config = with_local_model(config, self.local_model)
        return with_request_limit(config, self.max_concurrency)

    def batch_size(self, pairs: int) -> int:
        """Pairs per task run: as asked, else few enough task runs for the API and enough to keep
        every pair slot busy."""
        return self.pairs_per_task or max(1, math.ceil(pairs / MAX_TASK_RUNS), math.ceil(self.max_concurrency / 4))

    def wave(self, batch_size: int) -> int:
        return self.wave_size or max(2 * self.max_concurrency, batch_size)
