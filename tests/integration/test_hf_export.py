"""`personasim export --format hf`: a folder `datasets.load_dataset` reads, with a dataset card."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from personasim.cli import main
from personasim.dataset import Dataset

from conftest import write_config, write_pairs
from hub_server import FakeHub

SECRET = "sk-test-never-written-4242"


@pytest.fixture(scope="module")
def two_variants(tmp_path_factory, prefect_harness):
    """A dataset with two variants (seeds 0 and 7) of the same 8 pairs, on the offline backend."""
    from personasim.flows.generate import generate_interactions

    folder = tmp_path_factory.mktemp("hf")
    pairs = write_pairs(folder / "pairs.jsonl", 8)
    root = folder / "ds"
    for seed in (0, 7):
        summary = generate_interactions(input_path=str(pairs), dataset_root=str(root), seed=seed,
                                        new_variant=seed == 7, show_progress=False)
        assert summary["done"] == 8
    return root


def card_front_matter(folder: Path) -> dict:
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_a_remote_run_exports_splits_datasets_loads_with_a_card(tmp_path, remote_config, llm_server, prefect_harness,
                                                                monkeypatch):
    import datasets

    from personasim.flows.generate import generate_interactions

    pairs = write_pairs(tmp_path / "pairs.jsonl", 12)
    cfg = write_config(tmp_path / "c.yaml", remote_config(distractor={"activation_probability": 0.6}))
    monkeypatch.setenv("PERSONASIM_TEST_KEY", SECRET)  # the key the config names
    root = tmp_path / "ds"
    assert generate_interactions(input_path=str(pairs), dataset_root=str(root), config_path=str(cfg),
                                 show_progress=False)["done"] == 12
    out = tmp_path / "hf"
    assert main(["export", str(root), "--format", "hf", "--to", str(out)]) == 0

    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))  # not the user's cache
    training = Dataset(root).table("training", ["interaction_id", "split"]).to_pylist()
    assert set(loaded) == {r["split"] for r in training}  # a split no persona fell in is left out
    for split in loaded:
        expected = sorted(r["interaction_id"] for r in training if r["split"] == split)
        assert sorted(loaded[split]["interaction_id"]) == expected
    assert sum(len(loaded[s]) for s in loaded) == 12
    stored_rows = Dataset(root).table("interactions", ["interaction_id", "messages"]).to_pylist()
    ix = {r["interaction_id"]: r for r in stored_rows}
    noised = 0
    for row in loaded["train"]:
        stored = ix[row["interaction_id"]]["messages"]
        assert [m["content"] for m in row["messages"]] == [m["content"] for m in stored]
        assert [m["content"] for m in row["clean_messages"]] == [m["clean_text"] or m["content"] for m in stored]
        noised += sum(a != b for a, b in zip(row["messages"], row["clean_messages"], strict=True))
        assert json.loads(row["persona_features"])["role"] == "engineer"
    assert noised > 0  # the noisy and the clean conversation both ship

    front = card_front_matter(out)
    assert [c["config_name"] for c in front["configs"]] == ["default"]
    info = front["dataset_info"][0]
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {s: len(loaded[s]) for s in loaded}
    # the sizes `datasets` keys its cache of a folder on: a re-export of other rows is not served stale
    assert info["download_size"] == sum(p.stat().st_size for p in (out / "data").rglob("*.parquet"))
    assert info["dataset_size"] == sum(s["num_bytes"] for s in info["splits"])
    card = (out / "README.md").read_text()
    if len(loaded) < 3:
        assert "(no persona fell in" in card
    assert "| assistant pool | openai/fake-model (temperature" in card  # the models
    assert "## Quality" in card and "near-duplicate conversations" in card and "seed 7" in card
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert SECRET.encode() not in everything and b"api_key_env" not in everything


def test_each_variant_is_a_config(two_variants, tmp_path):
    import datasets

    out = tmp_path / "hf"
    assert main(["export", str(two_variants), "--format", "hf", "--to", str(out)]) == 0
    front = card_front_matter(out)
    names = [c["config_name"] for c in front["configs"]]
    assert len(names) == 2 and all(n.startswith("variant-") for n in names)
    assert front["configs"][0].get("default") is True
    for name in names:
        loaded = datasets.load_dataset(str(out), name, cache_dir=str(tmp_path / "hf-cache"))
        assert sum(len(loaded[s]) for s in loaded) == 8
    assert "seed 7" in (out / "README.md").read_text()


def test_push_to_hub_uploads_the_folder_with_the_token_from_the_environment(two_variants, tmp_path):
    hub = FakeHub()
    try:
        out = tmp_path / "hf"
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_from_env_123", "HF_HUB_DISABLE_TELEMETRY": "1"}
        done = subprocess.run([sys.executable, "-m", "personasim", "export", str(two_variants), "--format", "hf",
                               "--to", str(out), "--push-to-hub", "someone/personas", "--private"],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert hub.repos == [{"name": "personas", "organization": "someone", "visibility": "private",
                              "type": "dataset"}]
        assert hub.authorizations == {"Bearer hf_from_env_123"}
        local = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert hub.files == local and "README.md" in local
        assert "hf_from_env_123" not in done.stdout + done.stderr
    finally:
        hub.close()


def test_push_without_a_token_fails_before_anything_is_written(two_variants, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = tmp_path / "hf"
    assert main(["export", str(two_variants), "--format", "hf", "--to", str(out), "--push-to-hub", "a/b"]) == 2
    assert capsys.readouterr().out.strip() == (
        "error: --push-to-hub needs a Hugging Face token in the HF_TOKEN environment variable")
    assert not out.exists()
