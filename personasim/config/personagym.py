"""PersonaGym's config.yaml, read as it is: its sections translated to personasim's, one notice each.

Its first three stages run here too: `persona_generation` and the bank and sampling files under
`paths` become the `personas` section, `query_generation`'s dataset and selection (and
`paths.query_datasets`) the `queries` section, `formulation` the formulator's template and limits.
What does not apply (output paths, the pipeline's stages) is reported as ignored, never an error.
A key given as "${VAR}" becomes `api_key_env: VAR`; a literal key in a file is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from personasim.errors import ConfigError

MARKERS = ("api", "interaction_generation", "query_generation", "training_data", "experiment", "paths",
           "persona_generation", "formulation")
PERSONA_PATHS = ("persona_bank", "sampling", "query_datasets")
PROVIDERS = {"openai": (None, "OPENAI_API_KEY"), "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
             "anthropic": ("https://api.anthropic.com/v1/", "ANTHROPIC_API_KEY")}  # Anthropic's OpenAI-compatible API
_ENV = re.compile(r"^\$\{(\w+)\}$")


def is_personagym(raw: Mapping[str, Any]) -> bool:
    return any(key in raw for key in MARKERS) and "llm" not in raw


class _Translation:
    def __init__(self, raw: Mapping[str, Any], origin: str) -> None:
        self.raw, self.origin = raw, origin
        self.notices: list[str] = []

    def section(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name) or {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.origin}: {name}: must be a mapping (PersonaGym layout)")
        return dict(value)

    def note(self, text: str) -> None:
        self.notices.append(f"{self.origin}: {text}")

    def endpoint(self, given: Mapping[str, Any], where: str) -> dict[str, Any]:
        """A PersonaGym model entry (provider, model, temperature, max_completion_tokens) as a role's keys."""
        api = self.section("api")
        provider = str(given.get("provider") or api.get("provider") or "openai")
        if provider not in PROVIDERS:
            raise ConfigError(f"{self.origin}: {where}.provider: {provider!r} is not one of {', '.join(PROVIDERS)}")
        default_url, default_env = PROVIDERS[provider]
        settings = self.section(provider) if provider in self.raw else {}
        same_as_api = (api.get("provider") or "openai") == provider
        key = settings.get("api_key") or (api.get("api_key") if same_as_api else None)
        endpoint: dict[str, Any] = {"provider": "openai", "model": given.get("model") or api.get("model"),
                                    "base_url": settings.get("base_url") or default_url,
                                    "api_key_env": self.key_env(key, f"{provider}.api_key", default_env)}
        inference = api.get("inference") or {}
        for ours, theirs in (("temperature", "temperature"), ("max_tokens", "max_completion_tokens")):
            value = given.get(theirs, inference.get(theirs))
            if value is not None:
                endpoint[ours] = value
        return endpoint

    def key_env(self, key: Any, where: str, default: str) -> str:
        if key is None:
            return default
        match = _ENV.match(str(key).strip())
        if not match:
            raise ConfigError(f"{self.origin}: {where}: an API key must not be written in a config file; put it in "
                              f"an environment variable and write \"${{{default}}}\" instead")
        return match.group(1)

    def path(self, path: Any, where: str) -> str:
        """A file the config names, resolved against its folder; an error naming it if it is not there."""
        from personasim.config.loading import resolve_path

        found = resolve_path(str(path), self.origin)
        if not found.is_file():
            raise ConfigError(f"{self.origin}: {where}: no such file: {path}")
        return str(found)


def translate(raw: Mapping[str, Any], origin: str) -> tuple[dict[str, Any], list[str]]:
    """(the native config, a notice per section translated or ignored)."""
    t = _Translation(raw, origin)
    native: dict[str, Any] = {"llm": {}, "generation": {}, "retry": {}}
    prompts: dict[str, str] = {}
    if "api" in raw:
        native["llm"]["default"] = t.endpoint({}, "api")
        t.note("api: translated to llm.default (every role's model, temperature, max_tokens, endpoint and key)")
    interaction = t.section("interaction_generation")
    if interaction:
        for key in ("min_turns", "max_turns"):
            if key in interaction:
                native["generation"][key] = interaction[key]
        if "max_workers" in interaction:
            native["llm"].setdefault("default", {})["max_concurrent_requests"] = interaction["max_workers"]
        if "max_retries" in interaction:
            native["retry"]["pair_attempts"] = 1 + int(interaction["max_retries"])
        if "retry_delay" in interaction:
            native["retry"]["max_wait"] = interaction["retry_delay"]
        if "max_supplement_rounds" in interaction:
            native["retry"]["supplement_rounds"] = interaction["max_supplement_rounds"]
        assistant = interaction.get("assistant_model") or {}
        if assistant.get("model_pool"):
            native["llm"]["assistant"] = {"model_pool": [
                {**t.endpoint(m, f"interaction_generation.assistant_model.model_pool[{i}]"),
                 "weight": m.get("weight", 1.0)} for i, m in enumerate(assistant["model_pool"])]}
        elif assistant:
            native["llm"]["assistant"] = t.endpoint(assistant, "interaction_generation.assistant_model")
        user = interaction.get("user_model") or {}
        if user:
            native["llm"]["user_simulator"] = t.endpoint(user, "interaction_generation.user_model")
            if user.get("system_prompt_template"):
                prompts["follow_up"] = t.path(user["system_prompt_template"],
                                              "interaction_generation.user_model.system_prompt_template")
        t.note("interaction_generation: translated to generation (turns), llm.assistant and llm.user_simulator, "
               "retry (max_retries, retry_delay, max_supplement_rounds) and max_concurrent_requests (max_workers)"
               + ("; user_model.feedback_probability ignored: the persona decides when it is satisfied"
                  if "feedback_probability" in user else ""))
    transfer = (t.section("query_generation").get("style_transfer") or {})
    if transfer:
        probability = transfer.get("transfer_probability", 0.8)
        native["generation"]["transfer_probability"] = probability if transfer.get("enabled", True) else 0.0
        if transfer.get("template"):
            prompts["rewrite_query"] = t.path(transfer["template"], "query_generation.style_transfer.template")
        t.note("query_generation.style_transfer: translated to generation.transfer_probability"
               + (" and the rewrite_query prompt" if transfer.get("template") else ""))
    _persona_stages(t, native, prompts)
    if "distractor" in raw:
        native["distractor"] = _distractor(t, t.section("distractor"))
    data = t.section("training_data")
    if data:
        if "split" in data:
            native["splits"] = data["split"]
        if "format" in data:
            native["export"] = {k: v for k, v in data["format"].items() if k.startswith("include_")}
        t.note("training_data: translated to splits and export (the include_* switches of the personagym export)")
    experiment = t.section("experiment")
    if "seed" in experiment:
        native["seed"] = experiment["seed"]
    if experiment:
        ignored = [k for k in experiment if k != "seed"]
        t.note("experiment: " + ("seed translated" if "seed" in experiment else "no seed given")
               + (f"; {', '.join(ignored)} ignored (one stage here, and a rerun always skips what is done)"
                  if ignored else ""))
    for provider in PROVIDERS:
        if provider in raw:
            t.note(f"{provider}: translated to the base_url and api_key_env of the roles that use it")
    if prompts:
        native["prompts"] = prompts
    unknown = sorted(set(raw) - set(MARKERS) - {"distractor", *PROVIDERS})
    if unknown:
        raise ConfigError(f"{origin}: {unknown[0]}: unknown section in a PersonaGym config")
    return {k: v for k, v in native.items() if v != {}}, t.notices


def migrate(path: str) -> str:
    """A PersonaGym config file, or a personasim config of its earlier layout, as the native YAML
    of the current layout that gives the same run (keys only as variable names)."""
    from personasim.config.loading import load_config, read_yaml
    from personasim.config.migration import migrate_native

    raw = read_yaml(path)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    if is_personagym(raw):
        native, _ = translate(raw, path)
        header = f"# personasim config, migrated from the PersonaGym config {path}\n"
    else:
        native, notes = migrate_native(raw)
        if not notes:
            raise ConfigError(f"{path}: already in the current layout (nothing to migrate)")
        header = f"# personasim config, migrated from the earlier layout of {path}: {'; '.join(notes)}\n"
    load_config(native)  # what is printed must load
    return header + yaml.safe_dump(native, sort_keys=False, allow_unicode=True)


def _persona_stages(t: _Translation, native: dict[str, Any], prompts: dict[str, str]) -> None:
    """PersonaGym's first three stages: sampling personas, selecting queries, formulating prompts."""
    paths, generation = t.section("paths"), t.section("persona_generation")
    personas: dict[str, Any] = {}
    bank = (paths.get("persona_bank") or {}).get("persona")
    if bank:
        personas["bank"] = t.path(bank, "paths.persona_bank.persona")
    sampling = (paths.get("sampling") or {}).get("config")
    if sampling:
        personas["sampling_config"] = t.path(sampling, "paths.sampling.config")
    strategy = generation.get("sampling_strategy")
    if strategy is not None:
        personas["strategy"] = {"custom": "weighted"}.get(str(strategy), strategy)
    for key in ("num_personas", "feature_availability_rate"):
        if generation.get(key) is not None:
            personas[key] = generation[key]
    diversity = generation.get("diversity") or {}
    if diversity:
        personas["min_hamming_distance"] = diversity.get("min_hamming_distance", 3) if diversity.get(
            "enabled", True) else 1
        if diversity.get("max_retries", diversity.get("max_attempts")) is not None:
            personas["max_retries"] = diversity.get("max_retries", diversity.get("max_attempts"))
    if personas or "persona_generation" in t.raw:
        native["personas"] = personas
        t.note("persona_generation and paths.persona_bank / paths.sampling: translated to personas (the bank, "
               "the sampling settings; sampled with the run's seed)")
    queries_given = t.section("query_generation")
    dataset, selection = dict(queries_given.get("dataset") or {}), dict(queries_given.get("selection") or {})
    pool = [dataset["path"]] if dataset.get("path") else list(paths.get("query_datasets") or [])
    queries: dict[str, Any] = {}
    if pool:
        queries["pool"] = [t.path(p, "query_generation.dataset.path") for p in pool]
    limit = dataset.get("max_queries", queries_given.get("max_queries"))
    if limit:  # null or 0: every query
        queries["max_queries"] = limit
    if selection.get("queries_per_persona") is not None:
        queries["queries_per_persona"] = selection["queries_per_persona"]
    if selection.get("strategy") is not None:
        queries["selection"] = "in_order" if selection["strategy"] == "round_robin" else selection["strategy"]
    if queries:
        native["queries"] = queries
        t.note("query_generation.dataset / selection and paths.query_datasets: translated to queries (the pool, "
               "queries_per_persona, selection, max_queries)")
    formulation = t.section("formulation")
    if formulation:
        if formulation.get("system_prompt_template"):
            prompts["formulate_system_prompt"] = t.path(formulation["system_prompt_template"],
                                                        "formulation.system_prompt_template")
        if formulation.get("min_prompt_length"):
            native["formulation"] = {"min_chars": formulation["min_prompt_length"]}
        ignored = sorted(set(formulation) - {"system_prompt_template", "min_prompt_length"})
        t.note("formulation: translated to the formulator's template and min_chars (the model: llm.default)"
               + (f"; {', '.join(ignored)} ignored (the run's retry policy and the formulator's contract apply)"
                  if ignored else ""))
    rest = sorted(set(paths) - set(PERSONA_PATHS))
    if rest:
        t.note(f"paths: {', '.join(rest)} ignored (outputs go to the run's dataset root)")


def _distractor(t: _Translation, given: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"enabled": given.get("enabled", True),
                           "type": "semantic" if given.get("use_semantic", True) else "rule_based"}
    if "activation_probability" in given:
        out["activation_probability"] = given["activation_probability"]
    if given.get("strategy_path"):
        with open(t.path(given["strategy_path"], "distractor.strategy_path"), encoding="utf-8") as handle:
            strategy = yaml.safe_load(handle) or {}
        out["semantic"] = {"layer_weights": strategy.get("layer_weights") or {},
                           "strategies": {name: settings for layer in (strategy.get("strategies") or {}).values()
                                          for name, settings in (layer or {}).items()}}
        if not out["semantic"]["layer_weights"]:
            del out["semantic"]["layer_weights"]
    if given.get("noise_strategies"):
        out["rule_based"] = {"strategies": {s["name"]: {k: v for k, v in s.items() if k != "name"}
                                            for s in given["noise_strategies"]}}
    t.note("distractor: translated (use_semantic to type, strategy_path's layer_weights and strategies, "
           "noise_strategies to rule_based.strategies)")
    return out
