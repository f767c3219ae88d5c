"""The persona sampler at scale: wall time and peak memory to sample N personas at a minimum Hamming
distance over the default bank (34 dimensions), side by side with peers doing the same.

Run by hand from the repository root (with the project installed):

    python benchmarks/personas.py                                   # 10k and 100k, d=3, all strategies
    python benchmarks/personas.py --sizes 10000 --peers naive       # also every candidate against every persona
    python benchmarks/personas.py --personagym ~/src/LLM-PPOpt      # also PersonaGym's own sampler

Rows:
- `personasim/<strategy>`: PersonaSampler, the pigeonhole index (a candidate is compared only with
  the personas that agree with it on a whole block of dimensions);
- `naive`: the same sampler and draws, each candidate compared with every persona accepted so far
  (what PersonaGym's sampler does): what the index saves;
- `personagym`: PersonaGym's own PersonaSampler.sample_batch (src/sampling.py of a checkout you give,
  the same bank written in its layout; it prints a line per 10 personas, sent to /dev/null).
Each row runs in a process of its own (peak RSS is that process's); a row that does not finish
within --timeout seconds is reported as such. Also: the minimum distance found afterwards (for
personasim, searched with the same blocking) and the mean.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STRATEGIES = ("random", "stratified", "weighted")


def _child(kind: str, n: int, distance: int, personagym: str | None) -> dict:
    started = time.perf_counter()
    if kind == "personagym":
        features = _personagym(n, distance, personagym or "")
    else:
        from personasim.config.personas import SamplingSettings
        from personasim.personas import PersonaSampler, diversity, load_bank

        if kind == "naive":
            diversity.HammingIndex.too_close = _linear  # type: ignore[method-assign]
        strategy = kind.split("/")[-1] if "/" in kind else "random"
        sampler = PersonaSampler(load_bank(), SamplingSettings(strategy=strategy, min_hamming_distance=distance,
                                                               max_retries=1000), seed=1)
        features = [p.features for p in sampler.sample(n)]
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the sampling's, before the figures below
    from personasim.personas.stats import distances

    spread = distances(features, distance, search=1)
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak),
            "min": spread["min"], "min_exact": spread["min_exact"], "mean": spread["mean"], "personas": len(features)}


def _linear(self, codes) -> bool:  # type: ignore[no-untyped-def]
    return any(self.distance(codes, other, self.min_distance) < self.min_distance for other in self.personas)


def _personagym(n: int, distance: int, checkout: str) -> list[dict]:
    """PersonaGym's sampler on personasim's default bank, written in PersonaGym's layout."""
    import contextlib
    import io

    import yaml

    from personasim.personas import load_bank

    bank = load_bank()
    folder = Path(tempfile.mkdtemp())
    (folder / "persona.yaml").write_text(yaml.safe_dump({"dimensions": [
        {"name": d.name, "description": d.description, "type": "categorical", "category": "basic_info",
         "is_constraint": d.is_constraint, "values": list(d.values)} for d in bank.dimensions]}))
    constraints = sum(d.is_constraint for d in bank.dimensions)
    (folder / "sampling.yaml").write_text(yaml.safe_dump({
        "strategy": "random", "random_sampling": {"feature_availability_rate": 0.7, "seed": 1},
        "diversity": {"enabled": True, "min_hamming_distance": distance, "max_attempts": 1000},
        "constraints": {"require_constraint": True, "min_constraints": constraints, "max_constraints": constraints}}))
    sys.path.insert(0, checkout)
    from src.persona_bank import PersonaBank  # type: ignore[import-not-found]
    from src.sampling import PersonaSampler  # type: ignore[import-not-found]

    sampler = PersonaSampler(str(folder / "sampling.yaml"), PersonaBank(str(folder / "persona.yaml")))
    with contextlib.redirect_stdout(io.StringIO()):
        return [{k: str(v) for k, v in p.items()} for p in sampler.sample_batch(n)]


def measure(kind: str, n: int, distance: int, personagym: str | None, timeout: float) -> dict:
    command = [sys.executable, __file__, "--child", kind, str(n), str(distance), personagym or ""]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"error": f"> {timeout:.0f} s"}
    except subprocess.CalledProcessError as exc:
        return {"error": exc.stderr.strip().splitlines()[-1][:60]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--distance", type=int, default=3)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--peers", nargs="*", default=[], choices=["naive", "personagym"])
    parser.add_argument("--personagym", default=None, help="a checkout of PersonaGym's code (src/sampling.py)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, distance, checkout = args.child
        print(json.dumps(_child(kind, int(n), int(distance), checkout or None)))
        return
    kinds = [f"personasim/{s}" for s in args.strategies] + list(args.peers)
    if args.personagym and "personagym" not in kinds:
        kinds.append("personagym")
    print(f"{'sampler':<22}{'personas':>10}{'wall s':>9}{'peak RSS MB':>13}{'min dist':>10}{'mean dist':>11}")
    for n in args.sizes:
        for kind in kinds:
            row = measure(kind, n, args.distance, args.personagym, args.timeout)
            if "error" in row:
                print(f"{kind:<22}{n:>10,}  {row['error']}")
                continue
            nearest = row["min"] if row["min_exact"] else f">={row['min']}"
            print(f"{kind:<22}{row['personas']:>10,}{row['wall_s']:>9}{row['peak_rss_mb']:>13}{nearest!s:>10}"
                  f"{row['mean']:>11}", flush=True)


if __name__ == "__main__":
    main()
