"""The parameters of a run, their limits declared once as annotated types.

The flow's signature uses them, so Prefect's parameter schema carries each limit (the UI form
and the server refuse `max_concurrency=0` when a run is created, not inside it), and
`RunParameters`, what the library validates, is made of the same types. The descriptions are in
the flow's docstring, where Prefect reads them (also without importing the flow, at deploy).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from personasim.config import PersonasimConfig, load_config, with_local_model, with_request_limit
from personasim.errors import ConfigError
from personasim.personas.source import PersonaSource

TaskRunnerName = Literal["thread", "dask", "ray"]

InputPath = Annotated[str | None, Field(min_length=1)]
Personas = Annotated[str | None, Field(min_length=1)]
QueryPool = Annotated[str | None, Field(min_length=1)]
QueriesPerPersona = Annotated[int | None, Field(ge=1, le=1000)]
PersonaBankPath = Annotated[str | None, Field(min_length=1)]
DatasetRoot = Annotated[str, Field(min_length=1)]
ConfigPath = str | None
Backend = Literal["config", "local"]
LocalModel = Annotated[str, Field(min_length=1)]
RunName = Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Seed = int | None
MaxConcurrency = Annotated[int, Field(ge=1, le=1024)]
Limit = Annotated[int | None, Field(ge=1)]
PairsPerTask = Annotated[int | None, Field(ge=1, le=10_000)]
WaveSize = Annotated[int | None, Field(ge=1, le=100_000)]
TaskRunnerChoice = TaskRunnerName
RunnerAddress = str | None
Workers = Annotated[int | None, Field(ge=1, le=1024)]
MaxCost = Annotated[float | None, Field(gt=0)]
RunMode = Literal["online", "batch"] | None
MaxFailureRatio = Annotated[float | None, Field(ge=0, le=1)]

MAX_TASK_RUNS = 50  # pair tasks per run when pairs_per_task is chosen for you (SQLite: benchmarks/server_load.py)


class RunParameters(BaseModel):
    """What a run takes; validated before any work starts (also for runs started from the UI)."""

    model_config = ConfigDict(extra="forbid")

    input_path: InputPath = None
    personas: Personas = None
    queries: QueryPool = None
    queries_per_persona: QueriesPerPersona = None
    persona_bank: PersonaBankPath = None
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
    new_variant: bool = False
    show_progress: bool = True
    max_failure_ratio: MaxFailureRatio = None
    mode: RunMode = None

    @model_validator(mode="after")
    def _cluster_options_need_a_cluster(self) -> RunParameters:
        if self.mode == "batch" and self.task_runner != "thread":
            raise ValueError("mode 'batch' runs its rounds in the flow's process: task_runner must be 'thread'")
        if self.task_runner == "thread" and (self.runner_address or self.workers):
            raise ValueError("runner_address and workers are for task_runner 'dask' or 'ray'")
        if self.runner_address and self.workers:
            raise ValueError("workers sizes a local cluster; an existing one at runner_address has its own")
        persona_options = [n for n in ("personas", "queries", "queries_per_persona", "persona_bank")
                           if getattr(self, n) is not None]
        if self.input_path is not None and persona_options:
            raise ValueError(f"input_path gives ready pairs; {persona_options[0]} is for pairs made from personas "
                             "and a query pool: give one or the other")
        return self

    def persona_source(self, config: PersonasimConfig) -> PersonaSource | None:
        """Where the run's personas and queries come from; None for a run of ready pairs. A run
        with neither is an error naming what to give."""
        if self.input_path is not None:
            return None
        source = PersonaSource.resolve(config, personas=self.personas, queries=self.queries,
                                       queries_per_persona=self.queries_per_persona, persona_bank=self.persona_bank)
        if source is None:
            raise ConfigError("no pairs to run: give --input FILE (ready pairs), or --personas N with --queries FILE "
                              "(pairs made from a persona bank and a query pool), or a config with a personas section")
        return source

    def run_mode(self, config: PersonasimConfig) -> str:
        """online or batch: as asked, else as the config's batch section says."""
        return self.mode or config.batch.mode

    def batch_run(self, config: PersonasimConfig) -> bool:
        """Whether the run goes in rounds through batch APIs: its mode, or an endpoint's, is batch."""
        return self.run_mode(config) == "batch" or any(c.mode == "batch" for c in config.connections.all())

    def config(self) -> PersonasimConfig:
        """The config file with this run's overrides (seed, local model, concurrency) applied."""
        config = load_config(self.config_path)
        if self.seed is not None:
            config = config.with_seed(self.seed)
        if self.backend == "local":
            config = with_local_model(config, self.local_model)
        return with_request_limit(config, self.max_concurrency)

    def batch_size(self, pairs: int) -> int:
        """Pairs per task run: as asked, else few enough task runs for the API (each costs tens of
        milliseconds of CPU here and in the server) and half the concurrency at least, so that two
        or three running tasks keep every pair slot busy."""
        return self.pairs_per_task or max(1, math.ceil(pairs / MAX_TASK_RUNS), math.ceil(self.max_concurrency / 2))

    def wave(self, batch_size: int) -> int:
        return self.wave_size or max(2 * self.max_concurrency, batch_size)
