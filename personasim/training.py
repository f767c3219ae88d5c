"""Training samples from interactions, a persona-level train/validation/test split, and exports."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from personasim.config import SplitConfig
from personasim.fsio import atomic_write_bytes
from personasim.records import Interaction, NoisyVersion
from personasim.rng import derive_seed

SPLITS = ("train", "validation", "test")


def split_for(persona_id: str, splits: SplitConfig | None = None) -> str:
    """The split of every sample of this persona: a hash, so it never changes between runs."""
    splits = splits or SplitConfig()
    point = derive_seed("split", persona_id) / 2**64
    if point < splits.train:
        return "train"
    if point < splits.train + splits.validation:
        return "validation"
    return "test"


@dataclass
class TrainingSample:
    sample_id: str
    persona_id: str
    persona_features: dict[str, str]
    original_query: str
    initial_query: str
    prompt_trajectory: list[str]
    full_conversation: list[dict[str, str]]
    num_turns: int
    noisy_initial_queries: list[dict[str, Any]]
    metadata: dict[str, Any] = field(default_factory=dict)
    split: str = "train"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_chat(self) -> dict[str, Any]:
        """The OpenAI chat fine-tuning format: one {"messages": [...]} object per conversation."""
        system = self.metadata.get("system_prompt")
        messages = ([{"role": "system", "content": system}] if system else []) + self.full_conversation
        return {"messages": messages}


def interaction_to_training_sample(interaction: Interaction, splits: SplitConfig | None = None) -> TrainingSample:
    first = next((m for m in interaction.messages if m.role == "user"), None)
    noisy = [NoisyVersion.from_result(first.noise).to_dict()] if first and first.noise and first.was_noised else []
    return TrainingSample(
        sample_id="ts-" + interaction.interaction_id.removeprefix("ix-"),
        persona_id=interaction.persona_id,
        persona_features=dict(interaction.persona_features),
        original_query=interaction.original_query,
        initial_query=interaction.initial_query,
        prompt_trajectory=interaction.get_trajectory(),
        full_conversation=interaction.get_full_conversation(),
        num_turns=interaction.num_turns,
        noisy_initial_queries=noisy,
        metadata={"interaction_id": interaction.interaction_id, "query_id": interaction.query_id,
                  "assistant_model": interaction.assistant_model, "system_prompt": interaction.system_prompt,
                  "noised_turns": interaction.noised_turns, "config_fingerprint": interaction.config_fingerprint},
        split=split_for(interaction.persona_id, splits),
    )


class TrainingDataCollector:
    """Collects samples as interactions arrive (it can be handed to InteractionStorage)."""

    def __init__(self, splits: SplitConfig | None = None) -> None:
        self.splits = splits
        self._samples: list[TrainingSample] = []
        self._lock = threading.Lock()

    def interaction_to_training_sample(self, interaction: Interaction) -> TrainingSample:
        return interaction_to_training_sample(interaction, self.splits)

    def add_interaction(self, interaction: Interaction) -> TrainingSample:
        sample = self.interaction_to_training_sample(interaction)
        with self._lock:
            self._samples.append(sample)
        return sample

    def collect_from_interactions(self, interactions: list[Interaction | dict]) -> list[TrainingSample]:
        return [self.add_interaction(i if isinstance(i, Interaction) else Interaction.from_dict(i))
                for i in interactions]

    @property
    def samples(self) -> list[TrainingSample]:
        with self._lock:
            return list(self._samples)


class SampleCounts:
    """The export's statistics.json, counted as samples stream past (an export never holds them all)."""

    def __init__(self) -> None:
        self.by_split: Counter[str] = Counter()
        self.personas: set[str] = set()
        self.turns = 0
        self.with_noise = 0

    def add(self, sample: TrainingSample) -> None:
        self.by_split[sample.split] += 1
        self.personas.add(sample.persona_id)
        self.turns += sample.num_turns
        self.with_noise += bool(sample.noisy_initial_queries)

    def summary(self) -> dict[str, Any]:
        samples = sum(self.by_split.values())
        return {"samples": samples, "by_split": dict(self.by_split), "personas": len(self.personas),
                "avg_turns": round(self.turns / samples, 3) if samples else 0.0,
                "with_noisy_initial_query": self.with_noise}


def sample_statistics(samples: Iterable[TrainingSample]) -> dict[str, Any]:
    counts = SampleCounts()
    for sample in samples:
        counts.add(sample)
    return counts.summary()


def jsonl_name(split: str | None, chat_format: bool) -> str:
    return f"{split or 'all'}{'.chat' if chat_format else ''}.jsonl"


def jsonl_lines(samples: Iterable[TrainingSample], chat_format: bool = False) -> Iterator[bytes]:
    """One JSON line per sample: the full record, or the chat format fine-tuning tools read."""
    for sample in samples:
        record = sample.to_chat() if chat_format else sample.to_dict()
        yield (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def samples_jsonl(samples: list[TrainingSample], split: str | None = None,
                  chat_format: bool = False) -> tuple[str, bytes]:
    """The file name and JSONL lines for one split (all samples when split is None)."""
    chosen = (s for s in samples if split is None or s.split == split)
    return jsonl_name(split, chat_format), b"".join(jsonl_lines(chosen, chat_format))


def statistics_json(samples: Iterable[TrainingSample]) -> bytes:
    return json.dumps(sample_statistics(samples), indent=2).encode("utf-8")


class TrainingDataExporter:
    """Writes samples as JSONL: the full records, or the chat format fine-tuning tools read."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def export_samples(self, samples: list[TrainingSample], split: str | None = None,
                       chat_format: bool = False) -> Path:
        """One file per split (or all samples when split is None); written atomically."""
        name, payload = samples_jsonl(samples, split, chat_format)
        path = self.output_dir / name
        atomic_write_bytes(path, payload)
        return path

    def export_statistics(self, samples: list[TrainingSample]) -> Path:
        path = self.output_dir / "statistics.json"
        atomic_write_bytes(path, statistics_json(samples))
        return path
