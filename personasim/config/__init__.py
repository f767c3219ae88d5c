"""Configuration: the generation spec (what is generated, hashed into the fingerprint) and the run
options (how models are reached, how hard to retry), loaded from one YAML file."""

from personasim.config.loading import (
    BUNDLED_LOCAL_MODEL,
    SECTIONS,
    PersonasimConfig,
    load_config,
    with_local_model,
    with_request_limit,
    with_worker_share,
)
from personasim.config.options import Connection, Endpoint, ExportConfig, PriceConfig, RetryPolicy, SplitConfig
from personasim.config.spec import (
    ROLES,
    ContractConfig,
    DistractorConfig,
    GenerationConfig,
    GenerationSpec,
    ModelSpec,
    PoolModel,
    Provider,
    RuleStrategyConfig,
    SemanticConfig,
)

__all__ = [
    "BUNDLED_LOCAL_MODEL",
    "ROLES",
    "SECTIONS",
    "Connection",
    "ContractConfig",
    "DistractorConfig",
    "Endpoint",
    "ExportConfig",
    "GenerationConfig",
    "GenerationSpec",
    "ModelSpec",
    "PersonasimConfig",
    "PoolModel",
    "PriceConfig",
    "Provider",
    "RetryPolicy",
    "RuleStrategyConfig",
    "SemanticConfig",
    "SplitConfig",
    "load_config",
    "with_local_model",
    "with_request_limit",
    "with_worker_share",
]
