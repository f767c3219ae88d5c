"""A dataset as a Hugging Face dataset folder: Parquet per split and a README.md dataset card.

`datasets.load_dataset(DIR)` reads it as it is (the card's `configs` name the files of each split;
one config per variant when a dataset holds several), and `push_to_hub` uploads it unchanged.
Persona features are a JSON string: `datasets` has no map type.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from personasim.dataset.identity import variants
from personasim.dataset.schema import CHAT_MESSAGE, NOISY_VERSION, STRINGS
from personasim.dataset.store import Dataset
from personasim.errors import ConfigError, PersonasimError
from personasim.exports.card import SplitFile, dataset_card
from personasim.exports.selection import Selection
from personasim.fsio import atomic_write_bytes
from personasim.training import SPLITS

HF_ROW = pa.schema([
    ("sample_id", pa.string()),
    ("interaction_id", pa.string()),
    ("persona_id", pa.string()),
    ("persona_features", pa.string()),  # JSON object: feature -> value
    ("original_query", pa.string()),
    ("initial_query", pa.string()),
    ("system_prompt", pa.string()),  # what the assistant was told about the persona (null: a generic helper)
    ("messages", pa.list_(CHAT_MESSAGE)),  # what a model is trained on: user turns as noised
    ("clean_messages", pa.list_(CHAT_MESSAGE)),  # the same conversation with user turns before noise
    ("num_turns", pa.int32()),
    ("termination_reason", pa.string()),
    ("assistant_model", pa.string()),
    ("noise_layers", STRINGS),
    ("noisy_initial_queries", pa.list_(NOISY_VERSION)),
    ("prompt_trajectory", STRINGS),
    ("metadata", pa.string()),  # JSON object
])


def _rows(training: pa.Table, by_id: dict[str, dict[str, Any]], variant: str) -> dict[str, list[dict[str, Any]]]:
    """One variant's training samples as HF rows, by split; `by_id`: the interactions they came from
    (those an export keeps)."""
    training_rows = [r for r in training.filter(pc.equal(training.column("variant"), pa.scalar(variant))).to_pylist()
                     if r["interaction_id"] in by_id]
    splits: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    for row in sorted(training_rows, key=lambda r: r["sample_id"]):
        interaction = by_id[row["interaction_id"]]
        splits[row["split"]].append({
            "sample_id": row["sample_id"], "interaction_id": row["interaction_id"], "persona_id": row["persona_id"],
            "persona_features": json.dumps(dict(row["persona_features"]), ensure_ascii=False, sort_keys=True),
            "original_query": row["original_query"], "initial_query": row["initial_query"],
            "system_prompt": interaction["system_prompt"], "messages": row["full_conversation"],
            "clean_messages": [{"role": m["role"], "content": m["clean_text"] if m["role"] == "user" and m["clean_text"]
                                else m["content"]} for m in interaction["messages"]],
            "num_turns": row["num_turns"], "termination_reason": interaction["termination_reason"],
            "assistant_model": interaction["assistant_model"], "noise_layers": interaction["noise_layers"] or [],
            "noisy_initial_queries": row["noisy_initial_queries"], "prompt_trajectory": row["prompt_trajectory"],
            "metadata": row["metadata_json"],
        })
    return splits


def _config_names(held: list[dict[str, Any]]) -> dict[str, str]:
    if len(held) == 1:
        return {held[0]["fingerprint"]: "default"}
    return {v["fingerprint"]: f"variant-{v['fingerprint']}" for v in held}


def export_hf(dataset: Dataset, to: str | Path, selection: Selection | None = None) -> list[Path]:
    """Write `data/<config>/<split>-00000-of-00001.parquet` and README.md into `to`, the conversations
    `selection` keeps (all by default); their paths."""
    stats = dataset.read_json("stats.json")
    if stats is None:
        raise PersonasimError(f"{dataset.root}: no stats.json (not a personasim dataset, or no run finished)")
    held = [v for v in variants(dataset) if stats["variants"].get(v["fingerprint"], {}).get("interactions")]
    names = _config_names(held)
    training = dataset.table("training")  # read once for every variant
    kept, filtered = (selection or Selection()).keep(dataset)
    by_id = {r["interaction_id"]: r for r in dataset.table("interactions", [
        "interaction_id", "messages", "termination_reason", "assistant_model", "noise_layers",
        "assistant_provider", "system_prompt"]).to_pylist() if kept is None or r["interaction_id"] in kept}
    out = Path(to)
    written: list[Path] = []
    configs = []
    for variant in held:
        name = names[variant["fingerprint"]]
        splits = _rows(training, by_id, variant["fingerprint"])
        files: dict[str, SplitFile] = {}
        for split, rows in splits.items():
            if not rows:  # `datasets` cannot read an empty split; the card says which are missing
                continue
            relative = f"data/{name}/{split}-00000-of-00001.parquet"
            path = out / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            table = pa.Table.from_pylist(rows, schema=HF_ROW)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="zstd")
            payload = sink.getvalue().to_pybytes()
            atomic_write_bytes(path, payload)
            written.append(path)
            files[split] = SplitFile(relative, len(rows), table.nbytes, len(payload))
        configs.append({"name": name, "variant": variant, "files": files})
    card = dataset_card(stats, configs, HF_ROW, {r["assistant_provider"] for r in by_id.values()}, filtered)
    atomic_write_bytes(out / "README.md", card.encode("utf-8"))
    return [*written, out / "README.md"]


def push_to_hub(folder: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Upload an exported folder to a Hub dataset repo (created if missing); the token comes from
    HF_TOKEN in the environment only, never from an option or a file. Returns the commit URL."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ConfigError("--push-to-hub needs a Hugging Face token in the HF_TOKEN environment variable")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                                   commit_message="personasim export")
    except (HfHubHTTPError, httpx.HTTPError, ValueError) as exc:  # HTTP status, network, a refused repo id
        raise PersonasimError(f"push to the Hub repo {repo_id} failed: {str(exc).replace(token, '***')}") from None
    return str(commit.commit_url)
