"""A judged dataset: scores in `scores/`, the statistics, the report and the card; `personasim judge`
on an existing dataset and its rerun; agreement between two judges; exports that keep only the
conversations above a score."""

import itertools
import json
from collections import defaultdict
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from personasim.cli import main
from personasim.llm import operations as op

from conftest import write_config, write_pairs

pytestmark = pytest.mark.usefixtures("prefect_harness")
AXES = ("persona_adherence", "naturalness", "stop_timing", "personalization", "helpfulness", "coherence")


def rows(root, table):
    return ds.dataset(Path(root) / table, format="parquet", partitioning="hive").to_table().to_pylist()


def scripted_judge(llm_server, *, offset=0):
    """Scores that differ between conversations: helpfulness cycles 1..5 over the calls."""
    counter = itertools.count(offset)

    def reply(body):
        n = next(counter)
        return json.dumps({axis: {"score": (n + i) % 5 + 1, "reason": f"{axis} note {n}"}
                           for i, axis in enumerate(AXES)})

    llm_server.respond_with(op.JUDGE_SCORE, reply)


def mean_scores(root, axis):
    scores = defaultdict(list)
    for row in rows(root, "scores"):
        if row["axis"] == axis:
            scores[row["interaction_id"]].append(row["score"])
    return {ix: sum(v) / len(v) for ix, v in scores.items()}


def test_a_run_with_a_judge_scores_every_conversation_and_the_export_keeps_those_above(tmp_path, remote_config,
                                                                                       llm_server):
    scripted_judge(llm_server)
    cfg = write_config(tmp_path / "c.yaml", remote_config(llm={"judge": {"model": "judge-a"}}))
    pairs = write_pairs(tmp_path / "pairs.jsonl", 6, queries_per_persona=2)
    root = tmp_path / "ds"
    assert main(["run", "--input", str(pairs), "--output", str(root), "--config", str(cfg)]) == 0
    scores = rows(root, "scores")
    assert len(scores) == 12 * len(AXES) and {s["judge_model"] for s in scores} == {"judge-a"}
    stats = json.loads((root / "stats.json").read_text())
    judging = stats["judging"]
    assert judging["scored"] == 12 and set(judging["axes"]) == set(AXES)
    assert sum(judging["axes"]["helpfulness"]["distribution"].values()) == 12
    assert stats["tokens"]["by_module"]["judge"]["calls"] >= 12  # booked apart
    report = (root / "report.html").read_text()
    assert "judges&#x27; scores" in report and "lowest-scored conversations per axis" in report

    helpful = mean_scores(root, "helpfulness")
    above = {ix for ix, score in helpful.items() if score >= 4}
    assert 0 < len(above) < 12
    out = tmp_path / "hf"
    assert main(["export", str(root), "--format", "hf", "--to", str(out), "--min-score", "helpfulness=4"]) == 0
    exported = {r["interaction_id"] for f in (out / "data").rglob("*.parquet")
                for r in ds.dataset(f, format="parquet").to_table().to_pylist()}
    assert exported == above  # exactly the conversations at or above the score
    card = (out / "README.md").read_text()
    assert f"{len(above)} of 12" in card and f"| helpfulness below 4 | {12 - len(above)} |" in card
    assert "## Judged" in card
    chat = tmp_path / "chat"
    assert main(["export", str(root), "--format", "chat", "--to", str(chat), "--min-score", "helpfulness=4",
                 "--exclude-flagged"]) == 0
    lines = sum(len(p.read_text().splitlines()) for p in chat.glob("*.chat.jsonl"))
    assert lines == json.loads((chat / "statistics.json").read_text())["filtering"]["kept"] <= len(above)


def test_judging_an_existing_dataset_then_again_makes_no_call_and_two_judges_agree_or_not(
        tmp_path, remote_config, llm_server, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 5, queries_per_persona=2)
    root = tmp_path / "ds"
    plain = write_config(tmp_path / "plain.yaml", remote_config())
    assert main(["run", "--input", str(pairs), "--output", str(root), "--config", str(plain)]) == 0
    assert not (root / "scores").exists() and not llm_server.requests_for(op.JUDGE_SCORE)
    scripted_judge(llm_server)
    judges = write_config(tmp_path / "judges.yaml", remote_config(llm={"judge": [{"model": "judge-a"},
                                                                                 {"model": "judge-b"}]}))
    assert main(["judge", str(root), "--config", str(judges)]) == 0
    assert len(llm_server.requests_for(op.JUDGE_SCORE)) == 20  # 10 conversations x 2 judges
    assert len(rows(root, "scores")) == 20 * len(AXES)
    stats = json.loads((root / "stats.json").read_text())
    assert set(stats["judging"]["agreement"]) == set(AXES) and stats["judging"]["judges"] == ["judge-a", "judge-b"]
    assert all(a is None or -1 <= a <= 1 for a in stats["judging"]["agreement"].values())
    assert stats["tokens"]["by_module"]["judge"]["calls"] == 20  # outcome judge: in the dataset's books
    usage = [u for u in rows(root, "token_usage") if u["outcome"] == "judge"]
    assert len(usage) == 20 and {u["interaction_id"] for u in usage} == {r["interaction_id"]
                                                                         for r in rows(root, "interactions")}
    assert main(["judge", str(root), "--config", str(judges)]) == 0
    assert len(llm_server.requests_for(op.JUDGE_SCORE)) == 20  # a judged dataset: no call
    assert "20 scored before" in capsys.readouterr().out


def test_bad_filters_are_one_line_errors(tmp_path, remote_config, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    root = tmp_path / "ds"
    cfg = write_config(tmp_path / "c.yaml", remote_config())
    assert main(["run", "--input", str(pairs), "--output", str(root), "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["export", str(root), "--format", "hf", "--to", str(tmp_path / "o"), "--min-score", "coherence"]) == 2
    assert "--min-score coherence: give AXIS=N" in capsys.readouterr().out
    assert main(["export", str(root), "--format", "hf", "--to", str(tmp_path / "o"), "--min-score",
                 "coherence=4"]) == 2
    assert "no conversation of" in capsys.readouterr().out and not (tmp_path / "o").exists()
    assert main(["judge", str(root), "--config", str(cfg)]) == 2
    assert "the config has no judge" in capsys.readouterr().out
