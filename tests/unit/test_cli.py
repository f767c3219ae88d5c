"""The console script: fail-fast validation with one-line errors, stats, and the run lock."""

import json

import pytest

from personasim.cli import main
from personasim.dataset import Dataset
from personasim.errors import StorageError

from conftest import PERSONA


@pytest.mark.parametrize("content, needle", [
    ('{"persona_id": "p1", "persona_features": {"a": "b"}, "original_query": "x"}\n{oops\n',
     "pairs.jsonl: row 2: not valid JSON"),
    ('{"persona_id": "p1", "original_query": "x"}\n', "pairs.jsonl: row 1: field persona_features: missing"),
    ('{"persona_id": "p1", "persona_features": {"a": "b"}, "original_query": "x", "query_id": "q"}\n' * 2,
     "pairs.jsonl: row 2: field query_id: duplicate pair"),
    ("", "pairs.jsonl: no pairs in the input (it is empty)"),
])
def test_run_with_bad_input_fails_fast_in_one_line(tmp_path, capsys, content, needle):
    (tmp_path / "pairs.jsonl").write_text(content)
    code = main(["run", "--input", str(tmp_path / "pairs.jsonl"), "--output", str(tmp_path / "ds")])
    err = capsys.readouterr().out
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "ds").exists()


def test_unknown_config_key_fails_fast(tmp_path, capsys):
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"persona_id": "p", "persona_features": PERSONA,
                                                      "original_query": "x"}))
    (tmp_path / "c.yaml").write_text("generation:\n  turns: 3\n")
    code = main(["validate", "--input", str(tmp_path / "pairs.jsonl"), "--config", str(tmp_path / "c.yaml")])
    assert code == 2 and "c.yaml: generation.turns: unknown key" in capsys.readouterr().out


def test_validate_ok_and_stats_of_a_missing_dataset(tmp_path, capsys):
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"persona_id": "p", "persona_features": PERSONA,
                                                      "queries": ["a", "b"]}))
    assert main(["validate", "--input", str(tmp_path / "pairs.jsonl")]) == 0
    assert "ok: 2 pairs" in capsys.readouterr().out
    assert main(["stats", str(tmp_path / "nothing")]) == 2
    assert "no stats.json" in capsys.readouterr().out


def test_a_second_writer_on_the_same_root_is_refused(tmp_path):
    dataset = Dataset(tmp_path / "ds")
    with dataset.lock(), pytest.raises(StorageError, match="is in use by another run"), Dataset(tmp_path / "ds").lock():
        pass
    with Dataset(tmp_path / "ds").lock():  # released: the next run gets it
        pass


@pytest.mark.parametrize("option", [["--limit", "0"], ["--max-concurrency", "0"], ["--max-cost", "-1"],
                                    ["--workers", "x"]])
def test_a_bad_option_is_one_line_naming_it(tmp_path, capsys, option):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--input", "pairs.jsonl", "--output", str(tmp_path / "ds"), *option])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and option[0] in err and "Traceback" not in err


def test_an_unset_api_key_variable_is_refused_by_validate_and_run(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"persona_id": "p", "persona_features": PERSONA,
                                                      "original_query": "x"}))
    (tmp_path / "c.yaml").write_text("llm:\n  default: {provider: openai, model: x, api_key_env: NO_SUCH_KEY_VAR}\n")
    for command in ("validate", "run"):
        code = main([command, "--input", str(tmp_path / "pairs.jsonl"), "--config", str(tmp_path / "c.yaml")])
        out = capsys.readouterr().out
        assert code == 2 and "NO_SUCH_KEY_VAR is not set" in out and out.count("\n") == 1
    assert not (tmp_path / "output").exists()


def test_every_option_in_help_says_what_it_does(capsys):
    for command in ("run", "validate", "estimate", "stats"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out.split("options:", 1)[1]
        options = [line.split()[0].rstrip(",") for line in text.splitlines() if line.startswith("  -")]
        assert options, command
        for option in options:
            block = text.split(option, 1)[1].split("\n  -", 1)[0]
            assert len(block.split()) > 2, (command, option)  # a help text, not just the metavar
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "(default: 16)" in capsys.readouterr().out


def test_stats_on_a_closed_pipe_is_quiet(tmp_path):
    import subprocess
    import sys

    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "stats.json").write_text(json.dumps({"numbers": list(range(20000))}))
    run = subprocess.run(f"{sys.executable} -m personasim stats {tmp_path / 'ds'} --json | head -2",
                         shell=True, capture_output=True, text=True, timeout=60)
    assert run.stdout.count("\n") == 2 and run.stderr == ""


def test_a_run_with_another_seed_on_a_dataset_is_refused_until_asked_for_as_a_variant(tmp_path, capsys):
    from personasim.dataset.identity import record_variant

    (tmp_path / "pairs.jsonl").write_text(json.dumps({"persona_id": "p", "persona_features": PERSONA,
                                                      "original_query": "x"}))
    record_variant(Dataset(tmp_path / "ds"), "0123456789abcdef", 1)  # what an earlier run recorded
    code = main(["run", "--input", str(tmp_path / "pairs.jsonl"), "--output", str(tmp_path / "ds"), "--seed", "2"])
    out = capsys.readouterr().out
    assert code == 2 and out.count("\n") == 1
    assert "seed 1" in out and "seed 2" in out and "--new-variant" in out and "new --output" in out


S3 = "s3://bucket/ds?region=us-east-1&endpoint_override=127.0.0.1:9&scheme=http"  # nothing listens there


@pytest.mark.parametrize("how", [["--mode", "batch"], ["--config", "endpoint-batch.yaml"]])
def test_a_batch_run_into_object_storage_is_refused_in_one_line_before_anything_starts(tmp_path, capsys, monkeypatch,
                                                                                        how):
    """The run's mode or one endpoint's: either makes a batch run, whose journal needs a local folder."""
    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"persona_id": "p", "persona_features": PERSONA,
                                                      "original_query": "x"}))
    endpoint = "{provider: openai, model: m, base_url: 'http://127.0.0.1:9/v1', api_key_env: PERSONASIM_TEST_KEY}"
    (tmp_path / "endpoint-batch.yaml").write_text(f"llm:\n  default: {endpoint}\n  assistant: {{mode: batch}}\n")
    code = main(["run", "--input", "pairs.jsonl", "--output", S3, *how])
    out = capsys.readouterr().out
    assert code == 2 and f"--output {S3}: a batch run keeps its journal beside the dataset" in out
    assert out.count("\n") == 1 and "Traceback" not in out
