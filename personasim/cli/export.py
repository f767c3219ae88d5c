"""`personasim export`: a dataset in PersonaGym's files or as a Hugging Face dataset folder."""

from __future__ import annotations

import argparse
import os

from personasim.cli.common import Commands, add_command, console, finished_dataset
from personasim.errors import ConfigError


def add(sub: Commands) -> None:
    export = add_command(sub, "export", "write a dataset in another tool's format")
    export.add_argument("dataset", help="dataset root")
    export.add_argument("--format", choices=("personagym", "hf", "chat"), required=True,
                        help="personagym: train/val/test_samples.json and statistics.json; "
                             "hf: a Hugging Face dataset folder (Parquet splits and a README.md dataset card); "
                             "chat: <split>.chat.jsonl, the chat fine-tuning format")
    export.add_argument("--to", required=True, help="the folder to write into")
    export.add_argument("--config", default=None,
                        help="personagym: the config whose export section (include_*) applies")
    export.add_argument("--push-to-hub", metavar="REPO", default=None,
                        help="hf: also upload the folder to this Hub dataset repo (token: HF_TOKEN in the environment)")
    export.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    export.add_argument("--min-score", action="append", default=[], metavar="AXIS=N",
                        help="keep only conversations scored at least N on AXIS (the mean of their judges); "
                             "repeat for several axes")
    export.add_argument("--exclude-flagged", action="store_true",
                        help="leave out conversations with a truncated reply, a fallback or a contract violation")


def main(args: argparse.Namespace) -> int:
    if args.format == "personagym" and (args.push_to_hub or args.private):
        raise ConfigError("--push-to-hub and --private are for --format hf")
    if args.push_to_hub and not os.environ.get("HF_TOKEN"):  # before anything is written
        raise ConfigError("--push-to-hub needs a Hugging Face token in the HF_TOKEN environment variable")
    from personasim.exports.selection import Selection

    selection = Selection.parse(args.min_score, args.exclude_flagged)  # a bad one: before anything is read
    dataset = finished_dataset(args.dataset)
    if args.format == "chat":
        from personasim.exports.chat import export_chat

        files = export_chat(dataset, args.to, selection)
        console.print(f"wrote {', '.join(f.name for f in files)} to {args.to}", highlight=False)
        return 0
    if args.format == "hf":
        from personasim.exports.huggingface import export_hf, push_to_hub

        files = export_hf(dataset, args.to, selection)
        console.print(f"wrote {len(files)} files to {args.to} (load with datasets.load_dataset({args.to!r}))",
                      highlight=False)
        if args.push_to_hub:
            console.print(f"pushed to {push_to_hub(args.to, args.push_to_hub, private=args.private)}",
                          highlight=False)
        return 0
    from personasim.config import load_config
    from personasim.exports.personagym import export_personagym

    files = export_personagym(dataset, args.to, load_config(args.config).export, selection)
    console.print(f"wrote {', '.join(f.name for f in files)} to {args.to}", highlight=False)
    return 0
