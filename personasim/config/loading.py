"""One YAML file (or the reference API's plain dict) into the generation spec and the run options.

In the file each role states its model and how it is reached side by side (`llm.default` applies
to every role); the loader sorts each key into the spec or the connection by name, so a typo is
still an unknown key, named with its file and path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from personasim.config.judging import JudgingSettings
from personasim.config.migration import moved
from personasim.config.options import (
    BatchConfig,
    BudgetConfig,
    Connection,
    Endpoint,
    ExportConfig,
    PriceConfig,
    RetryPolicy,
    RoleConnections,
    SplitConfig,
)
from personasim.config.personagym import is_personagym, translate
from personasim.config.personas import FormulationSettings, QuerySettings, SamplingSettings, sampling_fields
from personasim.config.spec import ROLES, GenerationSpec, ModelSpec, PoolModel, Section
from personasim.errors import ConfigError

_MODEL_KEYS = set(PoolModel.model_fields)
_CONNECTION_KEYS = set(Connection.model_fields)
# roles outside the generation spec: what they write is stored with what it is for (a persona's
# system prompt), so they are not in the dataset's config fingerprint
PERSONA_ROLES = ("formulator",)
JUDGE = "judge"  # llm.judge: a mapping (one judge) or a list (several); no judging when absent


class PersonasimConfig(Section):
    """A run's whole configuration: the spec (what is generated) and how the run reaches its models."""

    spec: GenerationSpec = Field(default_factory=GenerationSpec)
    connections: RoleConnections = Field(default_factory=RoleConnections)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    splits: SplitConfig = Field(default_factory=SplitConfig)
    pricing: dict[str, PriceConfig] = Field(default_factory=dict)
    formulator: ModelSpec = Field(default_factory=ModelSpec)
    personas: SamplingSettings | None = None  # None: the config samples no personas (pairs come as input)
    queries: QuerySettings | None = None
    formulation: FormulationSettings = Field(default_factory=FormulationSettings)
    judging: JudgingSettings = Field(default_factory=JudgingSettings)

    @model_validator(mode="after")
    def _every_axis_has_a_rubric(self) -> PersonasimConfig:
        for axis in self.judging.axes:
            try:
                self.judging.rubric(axis)
            except KeyError:
                raise ValueError(f"judging.axes: {axis!r} has no rubric: give one in judging.rubrics "
                                 f"(axis: file)") from None
        return self

    @model_validator(mode="after")
    def _urls_need_the_openai_provider(self) -> PersonasimConfig:
        for endpoint in [*self.endpoints(), self.formulator_endpoint()]:
            if endpoint.model.provider != "openai" and endpoint.connection.base_url:
                raise ValueError(f"llm.{endpoint.role}: base_url is set but provider is "
                                 f"{endpoint.model.provider!r}; set provider: openai")
            if endpoint.model.provider != "openai" and endpoint.connection.mode == "batch":
                raise ValueError(f"llm.{endpoint.role}: mode is batch but provider is {endpoint.model.provider!r}: "
                                 "only an OpenAI-compatible endpoint has a batch API")
        if len(self.connections.assistant) != len(self.spec.models.assistant):
            raise ValueError("llm.assistant: every model_pool entry needs its connection")
        if len(self.connections.judges) != len(self.spec.models.judges):
            raise ValueError("llm.judge: every judge needs its connection")
        return self

    @property
    def seed(self) -> int:
        return self.spec.seed

    def fingerprint(self) -> str:
        """The spec's hash: what a dataset remembers of the config that made it."""
        return self.spec.fingerprint()

    def endpoints(self) -> list[Endpoint]:
        """Every role's model with its connection, one entry per pool model."""
        models, links = self.spec.models, self.connections
        return [Endpoint("style_transfer", models.style_transfer, links.style_transfer),
                *(Endpoint("assistant", m, c) for m, c in zip(models.assistant, links.assistant, strict=True)),
                Endpoint("user_simulator", models.user_simulator, links.user_simulator),
                Endpoint("distractor", models.distractor, links.distractor),
                *(Endpoint("judge", m, c) for m, c in zip(models.judges, links.judges, strict=True))]

    def formulator_endpoint(self) -> Endpoint:
        """The formulator's model and connection (used only by runs that formulate system prompts)."""
        return Endpoint("formulator", self.formulator, self.connections.formulator)

    def with_seed(self, seed: int) -> PersonasimConfig:
        return self.model_copy(update={"spec": self.spec.model_copy(update={"seed": seed})})


def map_connections(config: PersonasimConfig, change: Callable[[Connection], Connection]) -> PersonasimConfig:
    """The config with `change` applied to every role's connection."""
    links = config.connections
    changed = RoleConnections(style_transfer=change(links.style_transfer),
                              assistant=tuple(change(c) for c in links.assistant),
                              user_simulator=change(links.user_simulator), distractor=change(links.distractor),
                              formulator=change(links.formulator), judges=tuple(change(c) for c in links.judges))
    return config.model_copy(update={"connections": changed})


def with_request_limit(config: PersonasimConfig, max_concurrent_requests: int) -> PersonasimConfig:
    """Every endpoint capped at `max_concurrent_requests` calls in flight (a lower configured limit stays)."""
    return map_connections(config, lambda c: c.model_copy(update={"max_concurrent_requests": min(
        c.max_concurrent_requests or max_concurrent_requests, max_concurrent_requests)}))


def with_worker_share(config: PersonasimConfig, workers: int) -> PersonasimConfig:
    """One worker process's share of every endpoint's limits, when `workers` processes call it at once.

    Each process paces its own calls, so a cluster of N keeps the configured totals only if each
    takes 1/N of them.
    """
    if workers <= 1:
        return config

    def share(connection: Connection) -> Connection:
        update: dict[str, Any] = {}
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(connection, name)
            if value:
                update[name] = value / workers
        if connection.max_concurrent_requests:
            update["max_concurrent_requests"] = max(1, connection.max_concurrent_requests // workers)
        return connection.model_copy(update=update)

    return map_connections(config, share)


BUNDLED_LOCAL_MODEL = "smollm2"
BUNDLED_MAX_TOKENS = 160  # the bundled 135M model rambles to any limit; on 2 cores 512 tokens take ~10 s
# ... but a judge's scores (six axes, each with a reason) and a system prompt need more room than a turn
BUNDLED_LONG_MAX_TOKENS = 600


def with_local_model(config: PersonasimConfig, model: str = BUNDLED_LOCAL_MODEL) -> PersonasimConfig:
    """Every role on one local llama.cpp model (the bundled SmolLM2, or a GGUF path)."""

    def local(spec: ModelSpec, cap: int = BUNDLED_MAX_TOKENS) -> Any:
        update: dict[str, Any] = {"provider": "local", "model": model}
        if model == BUNDLED_LOCAL_MODEL:
            update["max_tokens"] = min(spec.max_tokens, cap)
        return spec.model_copy(update=update)

    models = config.spec.models
    changed = models.model_copy(update={
        "style_transfer": local(models.style_transfer), "assistant": tuple(local(m) for m in models.assistant),
        "user_simulator": local(models.user_simulator), "distractor": local(models.distractor),
        "judges": tuple(local(m, BUNDLED_LONG_MAX_TOKENS) for m in models.judges)})
    no_urls = map_connections(config, lambda c: c.model_copy(update={"base_url": None}))
    return no_urls.model_copy(update={"spec": config.spec.model_copy(update={"models": changed}),
                                      "formulator": local(config.formulator, BUNDLED_LONG_MAX_TOKENS)})


# -- loading --------------------------------------------------------------------------------------
def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _split_role(section: Any, where: str, pooled: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """A role's keys sorted into (model spec, connection); anything else is an unknown key."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: must be a mapping")
    model, connection = {}, {}
    for key, value in section.items():
        if key in _CONNECTION_KEYS:
            connection[key] = value
        elif key in _MODEL_KEYS and (pooled or key != "weight"):
            model[key] = value
        else:
            raise ConfigError(f"{where}.{key}: unknown key")
    return model, connection


def _roles(llm: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`llm` into (models, connections), `llm.default` applied to every role and pool model."""
    unknown = sorted(set(llm) - {"default", *ROLES, *PERSONA_ROLES, JUDGE})
    if unknown:
        raise ConfigError(f"llm.{unknown[0]}: unknown key (expected default, "
                          f"{', '.join((*ROLES, *PERSONA_ROLES, JUDGE))})")
    default = llm.get("default") or {}
    if not isinstance(default, Mapping):
        raise ConfigError("llm.default: must be a mapping")
    models: dict[str, Any] = {}
    links: dict[str, Any] = {}
    for role in (*ROLES, *PERSONA_ROLES):
        section = llm.get(role) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"llm.{role}: must be a mapping")
        if role != "assistant":
            models[role], links[role] = _split_role(_merge(default, section), f"llm.{role}", pooled=False)
            continue
        pool = section.get("model_pool", [{}])
        if not isinstance(pool, (list, tuple)) or not pool:
            raise ConfigError("llm.assistant.model_pool: must be a non-empty list")
        base = _merge(default, {k: v for k, v in section.items() if k != "model_pool"})
        split = [_split_role(_merge(base, entry) if isinstance(entry, Mapping) else entry,
                             f"llm.assistant.model_pool[{i}]", pooled=True) for i, entry in enumerate(pool)]
        models[role], links[role] = [m for m, _ in split], [c for _, c in split]
    judges = llm.get(JUDGE)
    if judges is not None:
        listed = judges if isinstance(judges, list) else [judges]
        split = [_split_role(_merge(default, entry) if isinstance(entry, Mapping) else entry,
                             f"llm.judge[{i}]" if isinstance(judges, list) else "llm.judge", pooled=False)
                 for i, entry in enumerate(listed)]
        models["judges"], links["judges"] = [m for m, _ in split], [c for _, c in split]
    return models, links


# Where a validation error's location came from in the file.
_ORIGIN = {("spec", "models"): "llm", ("connections",): "llm", ("spec",): ""}


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    for prefix, origin in sorted(_ORIGIN.items(), key=lambda item: -len(item[0])):
        if tuple(parts[:len(prefix)]) == prefix:
            parts = ([origin] if origin else []) + parts[len(prefix):]
            break
    if parts[:2] == ["llm", "assistant"] and len(parts) > 2 and parts[2].isdigit():
        parts[1:3] = [f"assistant.model_pool[{parts[2]}]"]
    return ".".join(parts) or "(root)"


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for err in error.errors():
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{source}: {_location(err['loc'])}: {msg}")
    return "; ".join(lines)


def read_yaml(source: str | Path) -> Any:
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None


SECTIONS = ("seed", "llm", "generation", "distractor", "contracts", "prompts", "retry", "budget", "batch", "export",
            "splits", "pricing", "personas", "queries", "formulation", "gate", "judging")


def resolve_path(path: str, origin: str) -> Path:
    """A path named in a config: against the config file's folder, then the working directory."""
    given = Path(path).expanduser()
    if not given.is_absolute() and origin != "config":
        beside = Path(origin).resolve().parent / given
        if beside.exists():
            return beside
    return given


def _prompt_files(prompts: Any, origin: str) -> dict[str, str]:
    """`prompts: {name: file}` as {name: the file's text}."""
    if not isinstance(prompts, Mapping):
        raise ConfigError(f"{origin}: prompts: must map a template name to a file")
    texts = {}
    for name, path in prompts.items():
        try:
            texts[name] = resolve_path(str(path), origin).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{origin}: prompts.{name}: cannot read {path}: {exc.strerror or exc}") from None
    return texts


def _persona_sections(raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """The `personas` and `queries` sections with their files found: a `sampling_config` file
    (PersonaGym's layout or personasim's) under the section's own keys, paths against the config."""
    out: dict[str, Any] = {}
    personas = raw.get("personas")
    if personas is not None:
        if not isinstance(personas, Mapping):
            raise ConfigError(f"{origin}: personas: must be a mapping")
        given = dict(personas)
        fields: dict[str, Any] = {}
        if given.get("sampling_config"):
            path = resolve_path(str(given.pop("sampling_config")), origin)
            sampling = read_yaml(path)
            if not isinstance(sampling, Mapping):
                raise ConfigError(f"{path}: a sampling config must be a mapping")
            fields, notices = sampling_fields(sampling, str(path))
            for notice in notices:
                print(f"personasim: sampling config: {notice}", file=sys.stderr)
        fields.update(given)
        for key in ("bank", "source"):
            if fields.get(key) and str(fields[key]) != "default":
                fields[key] = str(resolve_path(str(fields[key]), origin))
        out["personas"] = fields
    queries = raw.get("queries")
    if queries is not None:
        if not isinstance(queries, Mapping):
            raise ConfigError(f"{origin}: queries: must be a mapping")
        pool = queries.get("pool") or []
        out["queries"] = {**queries, "pool": [str(resolve_path(str(p), origin)) for p in
                                              ([pool] if isinstance(pool, str) else pool)]}
    return out


def _judging(raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """The `judging` section with its rubric files read (`rubrics: {axis: file}`)."""
    judging = raw.get("judging")
    if judging is None:
        return {}
    if not isinstance(judging, Mapping):
        raise ConfigError(f"{origin}: judging: must be a mapping")
    rubrics = judging.get("rubrics") or {}
    if not isinstance(rubrics, Mapping):
        raise ConfigError(f"{origin}: judging.rubrics: must map an axis to a file")
    texts = {}
    for axis, path in rubrics.items():
        try:
            texts[str(axis)] = resolve_path(str(path), origin).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{origin}: judging.rubrics.{axis}: cannot read {path}: {exc.strerror or exc}") from None
    return {"judging": {**judging, "rubrics": texts}}


def load_config(source: str | Path | Mapping[str, Any] | PersonasimConfig | None = None) -> PersonasimConfig:
    """Load and validate a config from a YAML path, a dict, or nothing (the offline defaults)."""
    if isinstance(source, PersonasimConfig):
        return source
    origin = "config" if source is None or isinstance(source, Mapping) else str(source)
    raw = {} if source is None else dict(source) if isinstance(source, Mapping) else read_yaml(source)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{origin}: top level must be a mapping of sections")
    if is_personagym(raw):
        raw, notices = translate(raw, origin)
        for notice in notices:
            print(f"personasim: PersonaGym config: {notice}", file=sys.stderr)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{origin}: {unknown[0]}: unknown key (sections: {', '.join(SECTIONS)})")
    old = moved(raw)
    if old is not None:
        raise ConfigError(f"{origin}: {old[0]}: moved to {old[1]} (`personasim config migrate {origin}` rewrites "
                          "the file in the current layout)")
    llm = raw.get("llm") or {}
    if not isinstance(llm, Mapping):
        raise ConfigError(f"{origin}: llm: must be a mapping")
    try:
        models, links = _roles(llm)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    formulator = models.pop("formulator")
    spec = {"models": models, **{k: raw[k] for k in ("seed", "generation", "distractor", "contracts", "gate")
                                 if k in raw}}
    prompts = _prompt_files(raw.get("prompts") or {}, origin)
    formulation = dict(raw.get("formulation") or {})
    if "formulate_system_prompt" in prompts:  # the formulator's template: not in the spec (see PERSONA_ROLES)
        formulation["template"] = prompts.pop("formulate_system_prompt")
    if prompts:
        spec["prompts"] = prompts
    document = {"spec": spec, "connections": links, "formulator": formulator, "formulation": formulation,
                **{k: raw[k] for k in ("retry", "budget", "batch", "export", "splits", "pricing") if k in raw},
                **_persona_sections(raw, origin), **_judging(raw, origin)}
    try:
        return PersonasimConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None
