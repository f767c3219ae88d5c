"""The console script: fail-fast validation with one-line errors, stats, and the run lock."""

import json

import pytest
from conftest import PERSONA

from personasim.cli import main
from personasim.dataset import Dataset
from personasim.errors import StorageError


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
