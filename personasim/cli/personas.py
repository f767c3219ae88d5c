"""`personasim personas sample`: the personas a run would sample, in a file to look at and edit
before anything is paid for (a run takes it back with `--personas FILE`)."""

from __future__ import annotations

import argparse

from personasim.cli.common import Commands, Parser, add_command, add_persona_options, console


def add(sub: Commands) -> None:
    personas = add_command(sub, "personas", "sample personas from a persona bank")
    persona_sub = personas.add_subparsers(dest="personas_command", required=True, parser_class=Parser)
    sample = add_command(persona_sub, "sample", "write the personas a run would sample to a file (no LLM call)")
    add_persona_options(sample)
    sample.add_argument("--config", default=None, help="YAML config: its personas section and seed")
    sample.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    sample.add_argument("--to", required=True, help="the JSONL file to write (one persona per line)")


def main(args: argparse.Namespace) -> int:
    from personasim.config import load_config
    from personasim.errors import ConfigError
    from personasim.personas import PersonaSampler, load_bank
    from personasim.personas.files import write_personas
    from personasim.personas.source import sampling_settings
    from personasim.personas.stats import distances

    config = load_config(args.config)
    seed = config.seed if args.seed is None else args.seed
    if args.personas is not None and not args.personas.strip().isdigit():
        raise ConfigError("--personas: give the number of personas to sample")
    sampling = sampling_settings(config, args.personas, args.persona_bank)
    sampler = PersonaSampler(load_bank(sampling.bank), sampling, seed)
    personas = sampler.sample(sampling.num_personas)
    count = write_personas(personas, args.to)
    spread = distances([p.features for p in personas], sampling.min_hamming_distance)
    nearest = spread["min"] if spread["min_exact"] else f"at least {spread['min']}"
    console.print(f"wrote {count} personas to {args.to} (seed {seed}, {len(sampler.bank.dimensions)} dimensions, "
                  f"strategy {sampling.strategy}); Hamming distance between personas: min {nearest}, "
                  f"mean {spread['mean']}", highlight=False)
    return 0
