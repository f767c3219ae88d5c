"""Compaction: few files per partition, the same rows, and no row lost or doubled by a kill at any step."""

import json

import pytest

from personasim.cli import main
from personasim.dataset import Dataset
from personasim.dataset import compact as compaction


def _dataset(tmp_path, waves=5, rows=3) -> Dataset:
    dataset = Dataset(tmp_path / "ds")
    dataset.prepare()
    for w in range(waves):
        ids = [f"ix-{w}-{i}" for i in range(rows)]
        dataset.write_wave(f"run-w{w:05d}", "2026-11-25", "v1", {
            "interactions": [{"interaction_id": i, "persona_id": "p", "num_turns": 2} for i in ids],
            "token_usage": [{"interaction_id": i, "module": "assistant", "input_tokens": 3, "output_tokens": 4,
                             "outcome": "interaction"} for i in ids],
            "training": [{"sample_id": i, "interaction_id": i, "split": "train" if w % 2 else "test"} for i in ids],
        })
    return dataset


def _state(dataset):
    ids = sorted(dataset.table("interactions", ["interaction_id"]).column(0).to_pylist())
    usage = dataset.table("token_usage", ["interaction_id"]).num_rows
    splits = sorted((r["sample_id"], r["split"]) for r in dataset.table("training", ["sample_id", "split"]).to_pylist())
    return ids, usage, splits


def _parts(dataset):
    return sorted(f.path for t in ("interactions", "token_usage", "training") for f in dataset.list_files(t))


def test_each_partition_ends_with_one_file_and_the_same_rows(tmp_path):
    dataset = _dataset(tmp_path)
    before = _state(dataset)
    assert len(_parts(dataset)) == 5 + 5 + 5
    result = dataset.compact()
    assert (result.files_before, result.files_after, result.partitions) == (15, 4, 4)  # training: train and test
    assert _state(dataset) == before and len(before[0]) == 15
    assert len(_parts(dataset)) == 4
    markers = [f.base_name for f in dataset.list_files("_commits")]
    # one marker for the new files (one per partition, all index 000); the waves' markers went with their files
    assert len(markers) == 1 and markers[0].startswith("compact-") and markers[0].endswith("-000.json")
    assert dataset.prepare() == []  # nothing left for a rerun to clean
    assert dataset.compact().partitions == 0  # idempotent
    assert _state(dataset) == before


@pytest.mark.parametrize("kill_at", ["before_journal", "after_journal", "after_first_move", "before_markers"])
def test_a_kill_at_any_step_loses_and_doubles_nothing(tmp_path, monkeypatch, kill_at):
    dataset = _dataset(tmp_path)
    before = _state(dataset)
    real_write_json, real_move = dataset.write_json, compaction._move
    moves = []

    class Killed(Exception):
        pass

    def write_json(name, payload):
        if name.startswith("_compaction/") and kill_at == "before_journal":
            raise Killed
        if name.startswith("_commits/") and kill_at == "before_markers":
            raise Killed
        real_write_json(name, payload)
        if name.startswith("_compaction/") and kill_at == "after_journal":
            raise Killed

    def move(fs, src, dest):
        real_move(fs, src, dest)
        moves.append(dest)
        if kill_at == "after_first_move":
            raise Killed

    monkeypatch.setattr(dataset, "write_json", write_json)
    monkeypatch.setattr(compaction, "_move", move)
    with pytest.raises(Killed):
        dataset.compact()
    monkeypatch.undo()

    reopened = Dataset(tmp_path / "ds")  # the next run
    reopened.prepare()
    assert _state(reopened) == before
    assert not reopened.list_files(compaction.JOURNALS)
    assert not [p for p in _parts(reopened) if p.endswith(compaction.PENDING)]
    expected_files = 15 if kill_at == "before_journal" else 4
    assert len(_parts(reopened)) == expected_files


def test_compact_command(tmp_path, capsys):
    dataset = _dataset(tmp_path)
    (tmp_path / "ds" / "stats.json").write_text(json.dumps({"interactions": 15}))
    assert main(["compact", str(tmp_path / "ds")]) == 0
    assert "15 files in 4 partitions compacted into 4" in capsys.readouterr().out
    assert len(_parts(dataset)) == 4
