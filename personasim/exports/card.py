"""The dataset card (README.md) of a Hugging Face export: YAML front matter the Hub and `datasets`
read (configs, splits, features), then how the data was made, what it cost and how good it is."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, NamedTuple

import pyarrow as pa
import yaml
from huggingface_hub import DatasetCard, DatasetCardData

from personasim.dataset.figures import markdown
from personasim.dataset.judging_stats import judging_rows
from personasim.dataset.persona_stats import persona_rows
from personasim.dataset.quality import as_markdown
from personasim.exports.selection import filtering_lines
from personasim.training import SPLITS

_DTYPES = {pa.string(): "string", pa.int32(): "int32", pa.int64(): "int64", pa.bool_(): "bool",
           pa.float64(): "float64"}


class SplitFile(NamedTuple):
    """One split's Parquet file in the export."""

    path: str  # relative to the export folder
    examples: int
    num_bytes: int  # in memory (Arrow), as `datasets` counts a split
    download_bytes: int  # on disk


def _feature(name: str, kind: pa.DataType) -> dict[str, Any]:
    """One column as the card's `dataset_info.features` entry (the YAML form of `datasets.Features`)."""
    if pa.types.is_list(kind):
        inner = kind.value_type
        if pa.types.is_struct(inner):
            return {"name": name, "list": [_feature(f.name, f.type) for f in inner]}
        return {"name": name, "list": _DTYPES[inner]}
    return {"name": name, "dtype": _DTYPES[kind]}


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


def _front_matter(stats: dict[str, Any], configs: list[dict[str, Any]], schema: pa.Schema) -> DatasetCardData:
    features = [_feature(f.name, f.type) for f in schema]
    return DatasetCardData(
        pretty_name="personasim synthetic conversations",
        language=["en"], task_categories=["text-generation"], size_categories=[_size_category(stats["interactions"])],
        tags=["synthetic", "personalization", "multi-turn", "user-simulation", "personasim"],
        configs=[{"config_name": c["name"], **({"default": True} if i == 0 and len(configs) > 1 else {}),
                  "data_files": [{"split": split, "path": f.path} for split, f in c["files"].items()]}
                 for i, c in enumerate(configs)],
        # the sizes as datasets' push_to_hub writes them; they are also what `datasets` keys its cache of
        # a local folder on (with the features), so a re-export of other rows is not served stale
        dataset_info=[{"config_name": c["name"], "features": features,
                       "splits": [{"name": split, "num_bytes": f.num_bytes, "num_examples": f.examples}
                                  for split, f in c["files"].items()],
                       "download_size": sum(f.download_bytes for f in c["files"].values()),
                       "dataset_size": sum(f.num_bytes for f in c["files"].values())}
                      for c in configs],
    )


def _variant_section(config: dict[str, Any]) -> str:
    variant = config["variant"]
    spec = variant.get("spec")
    sizes = ", ".join(f"{split} {f.examples:,}" for split, f in config["files"].items())
    missing = [split for split in SPLITS if split not in config["files"]]
    lines = [f"### Config `{config['name']}`", "",
             f"Config fingerprint `{variant['fingerprint']}`, seed {variant['seed']}; examples: {sizes}"
             + (f" (no persona fell in {' or '.join(missing)})" if missing else "") + ".", ""]
    if spec is None:
        return "\n".join([*lines, "The generation spec of this variant was not recorded (made by an older "
                          "personasim).", ""])
    models = spec["models"]
    roles = [("style transfer", [models["style_transfer"]]), ("assistant pool", models["assistant"]),
             ("user simulator", [models["user_simulator"]]), ("distractor", [models["distractor"]])]
    lines += ["| role | models |", "| --- | --- |",
              *(f"| {role} | {', '.join(_model(m) for m in pool)} |" for role, pool in roles), "",
              "<details><summary>generation spec (no secrets: API keys are never part of it)</summary>", "",
              "```yaml", yaml.safe_dump(spec, sort_keys=True).rstrip(), "```", "", "</details>", ""]
    return "\n".join(lines)


def _model(m: dict[str, Any]) -> str:
    weight = f", weight {m['weight']}" if "weight" in m else ""
    return f"{m['provider']}/{m['model']} (temperature {m['temperature']}{weight})"


def _personas(section: dict[str, Any] | None) -> list[str]:
    """How the personas were made, when the dataset made them: sampled from a bank of dimensions
    (or read from a file), given queries from a pool, a system prompt written for each."""
    if not section:
        return []
    sampling = section.get("sampling") or {}
    made = (f"read from {sampling['from_file']}" if sampling.get("from_file") else
            f"sampled from the persona bank `{sampling.get('bank', 'default')}` ({sampling.get('strategy')} "
            f"strategy, at least {sampling.get('min_hamming_distance')} features apart)")
    return ["## Personas", "",
            f"The personas were {made}; each was given queries from a deduplicated pool, and the assistant saw "
            "a system prompt written for its persona (the formulator; a fallback rendering of the features, "
            "labelled, where no written prompt passed its checks).", "",
            "| personas | value |", "| --- | --- |", *(f"| {n} | {markdown(v)} |" for n, v in persona_rows(section)),
            ""]


def _judged(section: dict[str, Any] | None) -> list[str]:
    """The judges' scores, when the dataset was judged."""
    if not section:
        return []
    return ["## Judged", "",
            f"{section['scored']:,} conversations were scored from 1 to 5 on each axis by "
            f"{', '.join(section['judges'])}, each score with a one-line reason (the `scores/` table).", "",
            "| judged | value |", "| --- | --- |", *(f"| {n} | {markdown(v)} |" for n, v in judging_rows(section)), ""]


def dataset_card(stats: dict[str, Any], configs: list[dict[str, Any]], schema: pa.Schema, providers: set[str],
                 filtered: dict[str, Any] | None = None) -> str:
    """The card's full text; `providers` (of the assistant replies) warn about offline template text."""
    tokens, cost = stats["tokens"], stats["cost"]
    body = [
        "# personasim synthetic conversations", "",
        "Multi-turn conversations between a persona-driven user simulator and assistant models, generated "
        f"with [personasim](https://pypi.org/project/personasim/) {version('personasim')}. For every persona and "
        "seed query, the query was rewritten in the persona's voice, a 2-5 turn conversation was simulated "
        "(the assistant drawn from a weighted model pool, the user simulator following up or stopping when "
        "satisfied) and noise was injected into user turns as they were sent. `messages` holds the "
        "conversation as sent (noised user turns), `clean_messages` the same turns before noise.", "",
        *(["> **Offline backend:** the text is persona-aware template text, not model output. Do not train on "
           "it; it exists to test pipelines.", ""] if "offline" in providers else []),
        "## Splits", "",
        "Splits are by persona (a hash of the persona id): no persona appears in two splits.", "",
        "## How it was made", "",
        *(_variant_section(c) for c in configs),
        "## Size and cost", "",
        f"{stats['interactions']:,} conversations from {stats['personas']:,} personas, {stats['messages']:,} "
        f"messages, {stats['avg_turns']} turns on average; {stats['failed_pairs']:,} pairs failed and are not "
        "included.", "",
        f"LLM calls behind the included conversations: {tokens['calls']:,} ({tokens.get('batch_calls', 0):,} "
        f"through a batch API), {tokens['input_tokens']:,} input tokens ({tokens.get('cached_tokens', 0):,} of them "
        f"from the provider's prompt cache) and {tokens['output_tokens']:,} output tokens, estimated USD "
        f"{cost['total_usd']} at the configured prices, cached and batch tokens at their rates "
        f"(models without a price: {', '.join(cost['unpriced_models']) or 'none'}).", "",
        "## Quality", "", as_markdown(stats["quality"]), "",
        *_personas(stats.get("persona_stages")),
        *_judged(stats.get("judging")),
        *filtering_lines(filtered or {}),
        "## Use", "", "```python", "from datasets import load_dataset",
        'ds = load_dataset("<this repo or folder>")', 'ds["train"][0]["messages"]', "```", "",
        "## Limitations", "",
        "Synthetic data: personas, users and their noise are simulated. Check the quality figures above and "
        "read a sample of conversations (`personasim report`) before training on it.", "",
    ]
    card = DatasetCard(f"---\n{_front_matter(stats, configs, schema).to_yaml()}\n---\n\n" + "\n".join(body))
    return str(card)
