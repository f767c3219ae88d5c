"""PersonaGym's training-data files from a dataset: train/val/test_samples.json and statistics.json.

Training scripts written for PersonaGym read these as they are: its TrainingSample fields, its
noisy-version and metadata shapes, its statistics, and its `training_data.format.include_*`
switches (the config's `export` section).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from personasim.config import ExportConfig
from personasim.dataset import Dataset
from personasim.dataset.rows import training_sample
from personasim.exports.selection import Selection
from personasim.fsio import atomic_write_bytes
from personasim.training import SPLITS, TrainingSample

FILES = {"train": "train_samples.json", "validation": "val_samples.json", "test": "test_samples.json"}
_OPTIONAL = {"include_persona": "persona_features", "include_trajectory": "prompt_trajectory",
             "include_distractor_versions": "noisy_initial_queries", "include_full_conversation": "full_conversation",
             "include_metadata": "metadata"}


def personagym_sample(sample: TrainingSample, provider: str | None, include: ExportConfig) -> dict[str, Any]:
    """One sample in PersonaGym's shape, without what `include` leaves out."""
    noisy = [{"noisy_text": v["text"], "noise_type": v["layer"], "applied_strategies": list(v["applied_strategies"])}
             for v in sample.noisy_initial_queries]
    meta = sample.metadata
    data: dict[str, Any] = {
        "sample_id": sample.sample_id, "persona_id": sample.persona_id, "persona_features": sample.persona_features,
        "original_query": sample.original_query, "initial_query": sample.initial_query,
        "prompt_trajectory": sample.prompt_trajectory, "full_conversation": sample.full_conversation,
        "num_turns": sample.num_turns, "noisy_initial_queries": noisy,
        "metadata": {"interaction_id": meta.get("interaction_id"), "query_id": meta.get("query_id"),
                     "distractor_applied": bool(noisy) or bool(meta.get("noised_turns")),
                     "assistant_model": {"model": meta.get("assistant_model"), "provider": provider},
                     "system_prompt": meta.get("system_prompt"), "config_fingerprint": meta.get("config_fingerprint")},
    }
    for switch, name in _OPTIONAL.items():
        if not getattr(include, switch):
            del data[name]
    return data


def statistics(samples: list[TrainingSample]) -> dict[str, Any]:
    """PersonaGym's statistics.json."""
    total = len(samples)
    noisy = [s for s in samples if s.noisy_initial_queries]
    layers = Counter(v["layer"] for s in noisy for v in s.noisy_initial_queries)
    return {
        "total_samples": total,
        "samples_by_split": {split: sum(1 for s in samples if s.split == split) for split in SPLITS},
        "avg_turns": round(sum(s.num_turns for s in samples) / total, 3) if total else 0.0,
        "avg_trajectory_length": round(sum(len(s.prompt_trajectory) for s in samples) / total, 3) if total else 0.0,
        "distractor_stats": {"samples_with_noise": len(noisy),
                             "noise_rate": round(len(noisy) / total, 4) if total else 0.0,
                             "layer_distribution": dict(sorted(layers.items()))},
        "persona_distribution": dict(sorted(Counter(s.persona_id for s in samples).items())),
        "created_at": datetime.now(timezone.utc).isoformat(),
    }


def export_personagym(dataset: Dataset, to: str | Path, include: ExportConfig | None = None,
                      selection: Selection | None = None) -> list[Path]:
    """Write the four files into `to`, the conversations `selection` keeps (all by default);
    returns their paths."""
    include = include or ExportConfig()
    providers = dict(zip(*(dataset.table("interactions", ["interaction_id", "assistant_provider"])
                           .column(c).to_pylist() for c in ("interaction_id", "assistant_provider")), strict=True))
    kept, _ = (selection or Selection()).keep(dataset)
    samples = [training_sample(row) for row in dataset.table("training").to_pylist()
               if kept is None or row["interaction_id"] in kept]
    out = Path(to)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, name in FILES.items():
        chosen = [personagym_sample(s, providers.get(s.metadata.get("interaction_id")), include)
                  for s in samples if s.split == split]
        atomic_write_bytes(out / name, json.dumps(chosen, ensure_ascii=False, indent=2).encode("utf-8"))
        written.append(out / name)
    atomic_write_bytes(out / "statistics.json", json.dumps(statistics(samples), indent=2).encode("utf-8"))
    return [*written, out / "statistics.json"]
