"""PersonaGym's config.yaml runs as it is, migrates, and its training-data files come out."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from personasim.cli import main
from personasim.config import load_config
from personasim.errors import ConfigError

from conftest import write_pairs

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "personagym"
SAMPLE_FIELDS = {"sample_id", "persona_id", "persona_features", "original_query", "initial_query",
                 "prompt_trajectory", "full_conversation", "num_turns", "noisy_initial_queries", "metadata"}


@pytest.fixture
def example(tmp_path):
    """PersonaGym's documented complete example config, with the files it names, in a folder of its own."""
    folder = tmp_path / "personagym"
    shutil.copytree(EXAMPLE, folder)
    return folder / "config.yaml"


def test_the_documented_example_loads_with_a_notice_per_section(example, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    config = load_config(example)
    notices = capsys.readouterr().err.splitlines()
    sections = {line.split(": ")[3] for line in notices}
    assert {"api", "interaction_generation", "query_generation.style_transfer", "distractor", "training_data",
            "experiment", "paths"} <= sections
    assert any("persona_generation and paths.persona_bank / paths.sampling: translated to personas" in line
               for line in notices)
    assert any("paths: interactions, logs, persona_specs, queries, training_data ignored" in line for line in notices)
    assert config.personas.num_personas == 100 and config.personas.min_hamming_distance == 3  # persona_generation
    assert config.personas.bank.endswith("input/persona.yaml") and config.personas.min_constraints == 3  # the files
    assert config.queries.queries_per_persona == 5 and config.queries.pool[0].endswith("input/query.jsonl")
    spec = config.spec
    assert (spec.seed, spec.generation.min_turns, spec.generation.max_turns) == (42, 2, 5)
    assert spec.generation.transfer_probability == 0.5
    assert spec.models.user_simulator.temperature == 0.8 and spec.models.style_transfer.max_tokens == 2048
    assert config.connections.user_simulator.api_key_env == "OPENAI_API_KEY"
    assert config.connections.assistant[0].max_concurrent_requests == 10  # max_workers
    assert spec.distractor.type == "semantic" and spec.distractor.activation_probability == 0.25
    assert spec.distractor.semantic.layer_weights["incomplete_info"] == 0.3  # from strategy_path, beside the config
    assert spec.distractor.semantic.strategies["colloquial_speech"].mandatory
    assert "${persona}" in spec.prompts["follow_up"]  # its system_prompt_template, placeholders read


def test_a_literal_key_is_refused_and_native_configs_still_refuse_unknown_keys(example):
    text = example.read_text().replace('"${OPENAI_API_KEY}"', '"sk-live-abc123"')
    example.write_text(text)
    with pytest.raises(ConfigError, match=r"must not be written in a config file.*\$\{OPENAI_API_KEY\}"):
        load_config(example)
    with pytest.raises(ConfigError, match="generation.max_worker: unknown key"):
        load_config({"llm": {}, "generation": {"max_worker": 3}})


def test_providers_and_pools_translate_to_endpoints(tmp_path, monkeypatch):
    config = load_config({
        "api": {"provider": "openrouter", "model": "anthropic/claude-3.5-haiku"},
        "openrouter": {"api_key": "${OPENROUTER_API_KEY}", "base_url": "https://openrouter.ai/api/v1"},
        "interaction_generation": {"assistant_model": {"model_pool": [
            {"provider": "openai", "model": "gpt-4o-mini", "weight": 0.2},
            {"provider": "openrouter", "model": "google/gemini-2.0-flash-exp", "weight": 0.8}]},
            "max_retries": 3, "max_supplement_rounds": 2},
        "distractor": {"use_semantic": False, "noise_strategies": [{"name": "typo", "probability": 0.3,
                                                                    "intensity": 0.1}]},
    })
    pool = list(zip(config.spec.models.assistant, config.connections.assistant, strict=True))
    assert [(m.model, m.weight, c.base_url, c.api_key_env) for m, c in pool] == [
        ("gpt-4o-mini", 0.2, None, "OPENAI_API_KEY"),
        ("google/gemini-2.0-flash-exp", 0.8, "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY")]
    assert config.connections.style_transfer.api_key_env == "OPENROUTER_API_KEY"
    assert (config.retry.pair_attempts, config.retry.supplement_rounds) == (4, 2)
    assert config.spec.distractor.type == "rule_based"
    assert config.spec.distractor.rule_based.strategies["typo"].intensity == 0.1


def test_migrate_prints_the_native_config_of_the_same_run(example, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    assert main(["config", "migrate", str(example)]) == 0
    native = capsys.readouterr().out
    assert "sk-" not in native and "api_key_env: OPENAI_API_KEY" in native
    (tmp_path / "native.yaml").write_text(native)
    migrated, original = load_config(tmp_path / "native.yaml"), load_config(example)
    assert migrated.fingerprint() == original.fingerprint()
    assert migrated.connections == original.connections and migrated.retry == original.retry
    assert not set(yaml.safe_load(native)) & {"api", "interaction_generation", "experiment"}


@pytest.mark.usefixtures("prefect_harness")
def test_the_example_runs_against_the_server_and_exports_personagym_files(example, llm_server, monkeypatch,
                                                                          tmp_path, capsys):
    from personasim.flows.generate import generate_interactions

    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test")
    raw = yaml.safe_load(example.read_text())
    raw["openai"] = {"api_key": "${PERSONASIM_TEST_KEY}", "base_url": llm_server.base_url}  # its provider section
    raw["training_data"]["format"]["include_full_conversation"] = False
    example.write_text(yaml.safe_dump(raw))
    pairs = write_pairs(tmp_path / "pairs.jsonl", 12)
    summary = generate_interactions(input_path=str(pairs), dataset_root=str(tmp_path / "ds"),
                                    config_path=str(example), max_concurrency=4)
    assert (summary["done"], summary["failed"]) == (12, 0)
    assert all(r.authorization == "Bearer sk-test" for r in llm_server.requests)
    assert main(["export", str(tmp_path / "ds"), "--format", "personagym", "--to", str(tmp_path / "pg"),
                 "--config", str(example)]) == 0
    files = {p.name for p in (tmp_path / "pg").iterdir()}
    assert files == {"train_samples.json", "val_samples.json", "test_samples.json", "statistics.json"}
    samples = [s for name in ("train", "val", "test") for s in json.loads((tmp_path / "pg" / f"{name}_samples.json")
                                                                          .read_text())]
    assert len(samples) == 12
    for sample in samples:
        assert set(sample) == SAMPLE_FIELDS - {"full_conversation"}  # include_full_conversation: false
        assert set(sample["metadata"]["assistant_model"]) == {"model", "provider"}
        for noisy in sample["noisy_initial_queries"]:
            assert set(noisy) == {"noisy_text", "noise_type", "applied_strategies"}
    stats = json.loads((tmp_path / "pg" / "statistics.json").read_text())
    assert stats["total_samples"] == 12 and sum(stats["samples_by_split"].values()) == 12
    assert set(stats["distractor_stats"]) == {"samples_with_noise", "noise_rate", "layer_distribution"}
    assert sum(stats["persona_distribution"].values()) == 12 and stats["avg_turns"] >= 2
