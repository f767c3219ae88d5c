import pytest

from personasim import ConfigError, load_config


def test_defaults_are_offline_and_valid():
    cfg = load_config(None)
    assert cfg.spec.models.style_transfer.provider == "offline"
    assert cfg.spec.distractor.semantic.layer_weights == {"surface_noise": 0.5, "incomplete_info": 0.3,
                                                     "semantic_ambiguity": 0.2}


def test_default_section_applies_to_every_role_and_pool_model():
    cfg = load_config({"llm": {"default": {"provider": "openai", "base_url": "http://127.0.0.1:1/v1",
                                           "model": "m0", "temperature": 0.1},
                               "assistant": {"model_pool": [{"model": "a", "weight": 2}, {"model": "b"}]},
                               "user_simulator": {"temperature": 0.9}}})
    assert cfg.spec.models.style_transfer.model == "m0"
    assert [m.model for m in cfg.spec.models.assistant] == ["a", "b"]
    assert cfg.spec.models.assistant[0].temperature == 0.1
    assert cfg.connections.assistant[1].base_url == "http://127.0.0.1:1/v1"
    assert cfg.spec.models.user_simulator.temperature == 0.9


@pytest.mark.parametrize("raw, needle", [
    ({"generation": {"max_turn": 3}}, "generation.max_turn: unknown key"),
    ({"llm": {"assistent": {}}}, "llm.assistent: unknown key"),
    ({"generation": {"min_turns": "two"}}, "generation.min_turns"),
    ({"generation": {"transfer_probability": 1.5}}, "generation.transfer_probability"),
    ({"distractor": {"activation_probability": -0.1}}, "distractor.activation_probability"),
    ({"generation": {"min_turns": 4, "max_turns": 2}}, "min_turns (4) is greater than max_turns (2)"),
    ({"llm": {"assistant": {"model_pool": [{"weight": 0}, {"weight": 0}]}}}, "weights sum to zero"),
    ({"distractor": {"semantic": {"layer_weights": {"surface_noise": 0, "incomplete_info": 0}}}},
     "layer_weights sum to zero"),
    ({"distractor": {"semantic": {"strategies": {"telepathy": {}}}}}, "unknown semantic strategy 'telepathy'"),
    ({"distractor": {"rule_based": {"strategies": {"typo": {"probabilty": 0.3}}}}}, "probabilty: unknown key"),
    ({"llm": {"default": {"temperature": 3}}}, "temperature"),
])
def test_bad_config_names_the_key(raw, needle):
    with pytest.raises(ConfigError) as err:
        load_config(raw)
    assert needle in str(err.value)


def test_yaml_file_errors_name_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 3\ngeneration:\n  min_turnz: 2\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: generation\.min_turnz: unknown key"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")


def test_fingerprint_ignores_runtime_knobs_but_not_models():
    base = load_config({"seed": 1})
    assert base.fingerprint() == load_config({"seed": 1, "retry": {"max_retries": 9, "pair_attempts": 3},
                                               "llm": {"default": {"timeout": 5, "requests_per_minute": 60}}}
                                              ).fingerprint()
    assert base.fingerprint() != load_config({"seed": 1, "llm": {"default": {"model": "other"}}}).fingerprint()
    assert base.fingerprint() != load_config({"seed": 2}).fingerprint()


def test_missing_api_key_for_openai_is_a_config_error(monkeypatch):
    from personasim.llm.factory import build_clients

    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    cfg = load_config({"llm": {"default": {"provider": "openai", "model": "gpt-x", "api_key_env": "NO_SUCH_KEY_VAR"}}})
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR is not set"):
        build_clients(cfg)


def test_a_key_of_the_earlier_layout_says_where_it_lives_now_and_migrate_rewrites_the_file(tmp_path):
    from personasim.config.personagym import migrate

    old = tmp_path / "old.yaml"
    old.write_text("seed: 3\nllm:\n  default: {max_retries: 7, max_retry_wait: 20}\n"
                   "generation: {max_workers: 12, interaction_attempts: 3}\n")
    with pytest.raises(ConfigError, match=r"old.yaml: llm.default.max_retries: moved to retry.max_retries "
                                          r"\(`personasim config migrate .*old.yaml` rewrites the file"):
        load_config(old)
    new = tmp_path / "new.yaml"
    new.write_text(migrate(str(old)))
    config = load_config(new)
    assert (config.retry.max_retries, config.retry.max_wait, config.retry.pair_attempts) == (7, 20, 3)
    assert config.connections.style_transfer.max_concurrent_requests == 12
    with pytest.raises(ConfigError, match="already in the current layout"):
        migrate(str(new))
