"""From a persona bank and a query pool to a dataset in one flow: personas sampled, queries assigned,
a system prompt written per persona and seen by the assistant, everything stored so that a rerun,
a growth and a resume pay for nothing twice (through the real `openai` client over HTTP)."""

import json
import shutil
from collections import Counter
from itertools import combinations
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from personasim.cli import main
from personasim.llm import operations as op
from personasim.testing import Fault

from conftest import write_config

pytestmark = pytest.mark.usefixtures("prefect_harness")

POOL = Path(__file__).resolve().parents[2] / "datasets" / "query_pool.jsonl"
EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "personagym"


def rows(root, table):
    return ds.dataset(Path(root) / table, format="parquet", partitioning="hive").to_table().to_pylist()


def english(config):
    """The test server answers in English whatever the persona's language: the language rule is off."""
    return {**config, "gate": {"language": False}}


def hamming(a, b):
    return sum(a.get(k) != b.get(k) for k in set(a) | set(b))


def run(root, cfg, *options):
    return main(["run", "--output", str(root), "--config", str(cfg), "--max-concurrency", "4", *options])


def test_personas_and_a_pool_make_a_dataset_whose_assistant_knows_its_persona(tmp_path, remote_config, llm_server):
    cfg = write_config(tmp_path / "c.yaml", english(remote_config()))
    root = tmp_path / "ds"
    assert run(root, cfg, "--personas", "6", "--queries", str(POOL), "--queries-per-persona", "2") == 0
    personas = {p["persona_id"]: p for p in rows(root, "personas")}
    assert len(personas) == 6 and {p["prompt_source"] for p in personas.values()} == {"formulated"}
    assert len(llm_server.requests_for(op.FORMULATE)) == 6  # one call per persona, not per pair
    interactions = rows(root, "interactions")
    assert len(interactions) == 12 and len({i["query_id"] for i in interactions}) == 12  # no query used twice
    for ix in interactions:
        assert ix["system_prompt"] == personas[ix["persona_id"]]["system_prompt"]
    for request in llm_server.requests_for(op.RESPOND):  # what the assistant was told
        assert request.body["messages"][0]["content"] in {p["system_prompt"] for p in personas.values()}
    assignments = rows(root, "assignments")
    assert Counter(a["persona_id"] for a in assignments) == {p: 2 for p in personas}
    stats = json.loads((root / "stats.json").read_text())
    section = stats["persona_stages"]
    assert section["personas"] == 6 and section["queries_per_persona"] == {"min": 2, "mean": 2.0, "max": 2}
    assert section["hamming_distance"]["min"] >= 3 and section["system_prompts"]["sources"] == {"formulated": 6}
    assert section["query_pool"]["exact_duplicates"] == 6 and stats["tokens"]["by_module"]["formulator"]["calls"] == 6
    usage = [u for u in rows(root, "token_usage") if u["outcome"] == "persona"]
    assert sorted(u["persona_id"] for u in usage) == sorted(personas)  # the books count them per persona

    # a rerun pays for nothing; growing to 8 personas keeps the first 6 and their queries
    before = llm_server.stats.requests
    assert run(root, cfg, "--personas", "6", "--queries", str(POOL), "--queries-per-persona", "2") == 0
    assert llm_server.stats.requests == before
    assert run(root, cfg, "--personas", "8", "--queries", str(POOL), "--queries-per-persona", "2") == 0
    kept = sorted((a["persona_id"], a["query_id"]) for a in rows(root, "assignments") if a["persona_id"] in personas)
    assert kept == sorted((a["persona_id"], a["query_id"]) for a in assignments)
    assert len(llm_server.requests_for(op.FORMULATE)) == 8 and len(rows(root, "interactions")) == 16


def test_a_broken_prompt_is_repaired_once_then_falls_back_labelled(tmp_path, remote_config, llm_server):
    cfg = write_config(tmp_path / "c.yaml", english(remote_config()))
    good = ("You help this person: match their tone, keep answers to the length they like, explain at their level, "
            "and ask before you assume what they already know about the subject at hand.")
    scripts = [["I'm sorry, I cannot write that.", "<system prompt>"],  # the first persona asked: broken twice
               ["Sure! Too short.", good]]  # the second: too short, then a good one
    seen: list[str] = []

    def reply(body):
        persona = body["messages"][1]["content"]
        if persona not in seen:
            seen.append(persona)
        return scripts[seen.index(persona)].pop(0)

    llm_server.respond_with(op.FORMULATE, reply)
    assert run(tmp_path / "ds", cfg, "--personas", "2", "--queries", str(POOL), "--queries-per-persona", "1") == 0
    order = [json.loads(p)["persona"] for p in seen]
    personas = sorted(rows(tmp_path / "ds", "personas"), key=lambda p: order.index(dict(p["persona_features"])))
    assert [p["prompt_source"] for p in personas] == ["fallback", "formulated"]
    assert personas[0]["prompt_fallback"].startswith("placeholder")
    assert personas[0]["system_prompt"].startswith("You are talking with a person with this profile:")
    assert [(v["reason"], v["repaired"]) for v in personas[0]["violations"]] == [("refusal", False),
                                                                                ("placeholder", False)]
    assert [(v["reason"], v["repaired"]) for v in personas[1]["violations"]] == [("too_short", True)]
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())["persona_stages"]
    assert stats["formulation_fallback_rate"] == 0.5 and stats["system_prompts"]["fallback_reasons"] == {
        "placeholder": 1}


def test_a_failed_formulation_fails_its_pairs_and_the_next_run_asks_again(tmp_path, remote_config, llm_server):
    cfg = write_config(tmp_path / "c.yaml", english(remote_config()))
    llm_server.inject(Fault("status", 400, operation=op.FORMULATE))
    root = tmp_path / "ds"
    assert run(root, cfg, "--personas", "3", "--queries", str(POOL), "--queries-per-persona", "2",
               "--max-concurrency", "1") == 0
    failures = rows(root, "failures")
    assert len(failures) == 2 and {f["stage"] for f in failures} == {"formulation"}
    assert all("system prompt" in f["reason"] and f["permanent"] for f in failures)
    assert len(rows(root, "interactions")) == 4 and len(rows(root, "personas")) == 2
    calls = len(llm_server.requests_for(op.FORMULATE))
    assert run(root, cfg, "--personas", "3", "--queries", str(POOL), "--queries-per-persona", "2") == 0
    assert len(llm_server.requests_for(op.FORMULATE)) == calls + 1  # only the failed persona, asked again
    assert len(rows(root, "interactions")) == 6 and rows(root, "failures") == []


def test_a_sampled_persona_file_is_edited_and_its_prompt_wins(tmp_path, remote_config, llm_server):
    cfg = write_config(tmp_path / "c.yaml", english(remote_config()))
    assert main(["personas", "sample", "--personas", "3", "--config", str(cfg), "--to", str(tmp_path / "p.jsonl")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and not llm_server.requests  # sampling pays for nothing
    lines[0]["system_prompt"] = "You are helping a night-shift nurse; keep it short and kind."
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert run(tmp_path / "ds", cfg, "--personas", str(tmp_path / "p.jsonl"), "--queries", str(POOL),
               "--queries-per-persona", "1") == 0
    sources = {p["persona_id"]: p["prompt_source"] for p in rows(tmp_path / "ds", "personas")}
    assert sources[lines[0]["persona_id"]] == "input" and Counter(sources.values()) == {"input": 1, "formulated": 2}
    assert len(llm_server.requests_for(op.FORMULATE)) == 2


@pytest.mark.parametrize("options, message", [
    (["--personas", "900", "--queries", str(POOL)], r"the pool holds 304 queries for 4,500 assignments"),
    (["--personas", "3"], r"--queries: personas need a query pool"),
    (["--personas", "nope.jsonl", "--queries", str(POOL)], r"--personas: nope.jsonl: no such persona file"),
    (["--personas", "3", "--queries", str(POOL), "--persona-bank", "BANK"],
     r"bank.yaml: dimension 'size': weights: value 'l' has no weight"),
    (["--input", "x.jsonl", "--personas", "3"], r"input_path gives ready pairs; personas is for pairs"),
    ([], r"no pairs to run: give --input FILE"),
])
def test_bad_persona_options_are_one_line_before_any_call(tmp_path, remote_config, llm_server, capsys, options,
                                                          message):
    (tmp_path / "bank.yaml").write_text("dimensions:\n  size: {name: size, values: [s, l], weights: {s: 1}}\n")
    cfg = write_config(tmp_path / "c.yaml", english(remote_config()))
    options = [str(tmp_path / "bank.yaml") if o == "BANK" else o for o in options]
    assert run(tmp_path / "ds", cfg, *options) == 2
    err = capsys.readouterr().out.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert __import__("re").search(message, err[0]), err[0]
    assert llm_server.stats.requests == 0


def test_personagyms_documented_example_runs_from_its_bank_and_pool(tmp_path, llm_server, monkeypatch):
    """PersonaGym's complete example config (its bank, sampling and query files beside it) with one
    `personasim run`: N personas x k queries, every persona distinct at the configured distance,
    every query used once, a persona-tailored system prompt on every interaction."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    folder = tmp_path / "personagym"
    shutil.copytree(EXAMPLE, folder)
    config = folder / "config.yaml"
    config.write_text(config.read_text() + f"\nopenai:\n  base_url: \"{llm_server.base_url}\"\n")
    root = tmp_path / "ds"
    assert main(["run", "--config", str(config), "--personas", "6", "--output", str(root),
                 "--max-concurrency", "4"]) == 0
    personas = rows(root, "personas")
    features = [p["persona_features"] for p in personas]
    assert len(personas) == 6 and min(hamming(dict(a), dict(b)) for a, b in combinations(features, 2)) >= 3
    interactions = rows(root, "interactions")
    assert len(interactions) == 30 and len({i["query_id"] for i in interactions}) == 30  # 6 x queries_per_persona 5
    assert all(i["system_prompt"] for i in interactions)
    sampled = json.loads((root / "personas.json").read_text())["sampling"]
    assert sampled["bank"].endswith("input/persona.yaml") and sampled["min_hamming_distance"] == 3


def test_sigkill_while_prompts_are_written_then_rerun_pays_for_no_prompt_twice(tmp_path, monkeypatch):
    import os
    import signal
    import subprocess
    import sys
    import time

    from personasim.personas import persona_id_for
    from personasim.testing import FakeOpenAIServer, server_config

    monkeypatch.setenv("PERSONASIM_TEST_KEY", "sk-test-kill")
    root = tmp_path / "ds"
    with FakeOpenAIServer(latency=0.25) as server:
        cfg = write_config(tmp_path / "c.yaml", english({"seed": 5, **server_config(server.base_url),
                                                         "distractor": {"enabled": False}}))
        command = [sys.executable, "-m", "personasim", "run", "--output", str(root), "--config", str(cfg),
                   "--personas", "12", "--queries", str(POOL), "--queries-per-persona", "1", "--max-concurrency", "2"]
        proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while len(list((root / "_personas").glob("*.json"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.6)  # calls in flight at the kill are answered (and recorded) by the server after it
        stored = {p.stem for p in (root / "_personas").glob("*.json")}
        assert 4 <= len(stored) < 12 and not (root / "personas").exists()  # killed before the table was written
        asked_before = len(server.requests_for(op.FORMULATE))
        assert subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        asked = [persona_id_for(json.loads(r.body["messages"][1]["content"])["persona"])
                 for r in server.requests_for(op.FORMULATE)[asked_before:]]
    assert not set(asked) & stored and sorted(asked) == sorted(set(asked))  # stored prompts are never asked again
    assert len(asked) == 12 - len(stored)
    assert len(rows(root, "personas")) == 12 and len(rows(root, "interactions")) == 12
