"""personasim side by side with hand-written peers doing exactly the same calls.

Run by hand from the repository root (with the project installed):

    python benchmarks/peers.py                                  # 500 pairs, 64 in flight, 1.0 s and 0.1 s
    python benchmarks/peers.py --pairs 100 --latencies 0.1 --repeat 3
    python benchmarks/peers.py --peers curator data_designer   # also Curator and Data Designer (own venvs)
    python benchmarks/peers.py --server-running                 # also personasim on a running Prefect server
    python benchmarks/peers.py --library                        # also personasim's library alone (no Prefect)

personasim runs first (`personasim run`, the whole command, against the latency server); its
dataset gives the call plan: for every pair, the calls it made in order (rewrite, assistant,
user simulator, distractor). Each peer replays that plan against a fresh latency server:
- `asyncio`: a bare `AsyncOpenAI` client and a semaphore of C calls, one JSONL line per pair;
- `threads`: the original's design: a `ThreadPoolExecutor` of 20 workers, the synchronous
  client, one JSON file per interaction;
- `curator` (bespokelabs-curator 0.1.31) and `data_designer` (data-designer 0.9.7), with
  `--peers`: each turn one dataset of the pairs that have a call at that step;
- `personasim_server`, with `--server-running`: personasim again, with a Prefect server started
  and ready before the clock starts (PREFECT_API_URL set, as when a user runs `prefect server
  start`): what Prefect's own start-up costs the default run, measured apart (the server's CPU
  and memory are not in this row; its flow runs send heartbeats, joined at exit);
- `personasim_library`, with `--library`: the same pairs through personasim's library
  (`InteractionGenerator.generate_interactions_batch`, C pairs at once, each interaction stored as
  it is done): the engine alone, without Prefect, the Parquet datasets and their statistics.
Runs are interleaved, `--repeat` of each; the table has the min and median wall, efficiency
(calls x L / C over the wall, start-up included), calls/s, CPU ms per call, peak RSS, the time
from start to the first call and from the last call to exit, and personasim's wall over each peer's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import run_measured, server_stats, start_server, write_inputs  # noqa: E402 - the same harness

THREAD_WORKERS = 20
OURS = ("personasim", "personasim_server", "personasim_library")


def call_plan(dataset: Path) -> list[list[str]]:
    """Each pair's calls, in order, as the modules that made them."""
    from personasim.dataset import Dataset

    rows = Dataset(dataset).table("token_usage", ["interaction_id", "module", "created_at"]).to_pylist()
    pairs: dict[str, list[tuple]] = {}
    for row in rows:
        pairs.setdefault(row["interaction_id"], []).append((row["created_at"], row["module"]))
    return [[module for _, module in sorted(calls)] for _, calls in sorted(pairs.items())]


def _messages(module: str, pair: int, step: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{module} for pair {pair}, call {step}: how should I plan my project?"}]


def peer_asyncio(plan_path: str, base_url: str, concurrency: int, out: str) -> None:
    from openai import AsyncOpenAI

    plan = json.loads(Path(plan_path).read_text())

    async def main() -> None:
        client = AsyncOpenAI(base_url=base_url, api_key="bench-key", max_retries=3)
        gate = asyncio.Semaphore(concurrency)

        async def pair(index: int, modules: list[str]) -> dict:
            replies = []
            for step, module in enumerate(modules):
                async with gate:
                    reply = await client.chat.completions.create(model="bench-model",
                                                                 messages=_messages(module, index, step))
                replies.append(reply.choices[0].message.content)
            return {"pair": index, "replies": replies}

        results = await asyncio.gather(*(pair(i, modules) for i, modules in enumerate(plan)))
        with open(out, "w") as handle:
            for result in results:
                handle.write(json.dumps(result) + "\n")
        await client.close()

    asyncio.run(main())


def library_run(pairs_path: str, config_path: str, concurrency: int, store: str) -> None:
    """personasim's library on the pairs of the run: the engine alone (imported here: the peers'
    environments have no personasim)."""
    from personasim.interaction_generator import InteractionGenerator, InteractionStorage

    with open(pairs_path) as handle:
        rows = [json.loads(line) for line in handle]
    InteractionGenerator.from_config(config_path).generate_interactions_batch(
        rows, show_progress=False, max_workers=concurrency, storage=InteractionStorage(store))


def peer_threads(plan_path: str, base_url: str, out: str) -> None:
    from openai import OpenAI

    plan = json.loads(Path(plan_path).read_text())
    client = OpenAI(base_url=base_url, api_key="bench-key", max_retries=3)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)

    def pair(index: int, modules: list[str]) -> None:
        replies = [client.chat.completions.create(model="bench-model", messages=_messages(module, index, step)
                                                  ).choices[0].message.content for step, module in enumerate(modules)]
        (folder / f"interaction_{index:06d}.json").write_text(json.dumps({"pair": index, "replies": replies}))

    with ThreadPoolExecutor(max_workers=THREAD_WORKERS) as pool:
        list(pool.map(pair, range(len(plan)), plan))


def peer_curator(plan_path: str, base_url: str, concurrency: int, out: str) -> None:
    """Curator's way to the same calls: one dataset per turn, every pair that has a call at that
    step, each step waiting for the previous one (its replies feed the next prompts)."""
    from bespokelabs import curator

    class Call(curator.LLM):
        def prompt(self, row: dict) -> str:
            return row["prompt"]

        def parse(self, row: dict, response: str) -> dict:
            return {"pair": row["pair"], "reply": response}

    llm = Call(model_name="gpt-4o-mini", backend="openai", backend_params={
        "base_url": base_url, "api_key": "bench-key", "max_concurrent_requests": concurrency,
        "max_requests_per_minute": 10_000_000, "max_tokens_per_minute": 10_000_000_000, "max_retries": 3,
        "require_all_responses": True})
    plan = json.loads(Path(plan_path).read_text())
    replies: dict[int, list[str]] = {i: [] for i in range(len(plan))}
    for step in range(max(len(modules) for modules in plan)):
        rows = [{"pair": i, "prompt": _messages(modules[step], i, step)[0]["content"]}
                for i, modules in enumerate(plan) if len(modules) > step]
        for row in llm(rows).dataset:
            replies[row["pair"]].append(row["reply"])
    with open(out, "w") as handle:
        for index, texts in replies.items():
            handle.write(json.dumps({"pair": index, "replies": texts}) + "\n")


def peer_data_designer(plan_path: str, base_url: str, concurrency: int, out: str) -> None:
    """Data Designer's way to the same calls, as Curator's: one dataset per turn, seeded (in order)
    with the pairs that have a call at that step, one LLM text column rendering the prompt."""
    import data_designer.config as dd
    import pandas as pd
    from data_designer.interface import DataDesigner

    provider = dd.ModelProvider(name="bench", endpoint=base_url, provider_type="openai", api_key="bench-key")
    model = dd.ModelConfig(alias="bench", model="bench-model", provider="bench",
                           inference_parameters=dd.ChatCompletionInferenceParams(
                               max_parallel_requests=concurrency, max_tokens=256))
    designer = DataDesigner(artifact_path=Path(out).parent / "dd-artifacts", model_providers=[provider])
    plan = json.loads(Path(plan_path).read_text())
    replies: dict[int, list[str]] = {i: [] for i in range(len(plan))}
    for step in range(max(len(modules) for modules in plan)):
        rows = pd.DataFrame([{"pair": i, "prompt": _messages(modules[step], i, step)[0]["content"]}
                             for i, modules in enumerate(plan) if len(modules) > step])
        builder = dd.DataDesignerConfigBuilder(model_configs=[model])
        builder.with_seed_dataset(dd.DataFrameSeedSource(df=rows), sampling_strategy=dd.SamplingStrategy.ORDERED)
        builder.add_column(dd.LLMTextColumnConfig(name="reply", prompt="{{ prompt }}", model_alias="bench"))
        for row in designer.create(builder, num_records=len(rows)).load_dataset().to_dict("records"):
            replies[int(row["pair"])].append(row["reply"])
    with open(out, "w") as handle:
        for index, texts in replies.items():
            handle.write(json.dumps({"pair": index, "replies": texts}) + "\n")


# Each peer in its own virtual environment (their dependencies clash with ours), pinned: the
# versions of the published comparison.
PEERS = {"curator": "bespokelabs-curator==0.1.31", "data_designer": "data-designer==0.9.7"}
VENVS = Path(__file__).resolve().parent / ".venvs"


def peer_python(name: str) -> Path:
    """The peer's own virtual environment (its dependencies clash with ours), made on first use."""
    python = VENVS / name / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PEERS[name], "pyyaml"], check=True)
    return python


def peer_env(system: str, work: Path) -> dict[str, str]:
    """Offline: tiktoken's encodings from the copy litellm ships (Curator's venv has it; Data
    Designer counts tokens with tiktoken too), no telemetry, and fresh caches and config folders so
    nothing is replayed."""
    if system not in PEERS:
        return {}
    peer_python("curator")
    tokenizers = next(VENVS.glob("curator/lib/python*/site-packages/litellm/litellm_core_utils/tokenizers"), None)
    return {**({"TIKTOKEN_CACHE_DIR": str(tokenizers)} if tokenizers else {}),
            "CURATOR_CACHE_DIR": str(work / "curator-cache"), "CURATOR_DISABLE_RICH_DISPLAY": "1",
            "DATA_DESIGNER_HOME": str(work / "data-designer-home"), "NEMO_TELEMETRY_ENABLED": "false",
            "TELEMETRY_ENABLED": "0", "HF_HUB_OFFLINE": "1"}


def measure(system: str, pairs: int, latency: float, concurrency: int, plan_path: Path | None) -> dict:
    server, base_url = start_server(latency, 0.0, None)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            env = peer_env(system, work)
            if system in OURS:
                pairs_path, config_path = write_inputs(work, pairs, base_url, concurrency, None)
                cmd = [sys.executable, "-m", "personasim", "run", "--input", str(pairs_path), "--output",
                       str(work / "ds"), "--config", str(config_path), "--max-concurrency", str(concurrency)]
                if system == "personasim_library":
                    cmd = [sys.executable, __file__, "--library", str(pairs_path), str(config_path), str(concurrency),
                           str(work / "store")]
            elif system == "asyncio":
                cmd = [sys.executable, __file__, "--peer", "asyncio", str(plan_path), base_url, str(concurrency),
                       str(work / "out.jsonl")]
            elif system in PEERS:
                cmd = [str(peer_python(system)), __file__, "--peer", system, str(plan_path), base_url,
                       str(concurrency), str(work / "out.jsonl")]
            else:
                cmd = [sys.executable, __file__, "--peer", "threads", str(plan_path), base_url, str(work / "out")]
            running = None
            if system == "personasim_server":  # the server `personasim run` would start, ready before the clock
                from personasim.embedded_api import EmbeddedAPI  # not in the peers' own environments

                running = EmbeddedAPI()
                running.wait_ready(90)
                env["PREFECT_API_URL"] = running.url
            try:
                started = time.time()
                wall, cpu, rss, _, _ = run_measured(cmd, env=env)
                ended = started + wall  # the command's exit (run_measured then reaps what it left)
            finally:
                if running is not None:
                    running.stop()
            if system == "personasim" and plan_path is not None and not plan_path.exists():
                plan_path.write_text(json.dumps(call_plan(work / "ds")))
        stats = server_stats(base_url)
    finally:
        server.terminate()
        server.wait()
    calls = stats["ok"]
    return {"system": system, "calls": calls, "wall_s": wall, "efficiency": calls * latency / concurrency / wall,
            "calls_per_s": calls / wall, "cpu_ms_per_call": cpu / calls * 1000, "peak_rss_mb": rss,
            "first_call_s": stats["first_at"] - started, "after_last_s": ended - stats["last_at"]}


def table(latency: float, rows: dict[str, list[dict]]) -> None:
    print(f"\nL = {latency} s, {rows['personasim'][0]['calls']} calls per run, {len(rows['personasim'])} runs each")
    print("| system | wall min / median | efficiency | calls/s | CPU ms/call | peak RSS MB | first call after | "
          "exit after last call | personasim's wall / this |")
    print("|---|---|---|---|---|---|---|---|---|")
    ours = statistics.median(r["wall_s"] for r in rows["personasim"])
    for system, runs in rows.items():
        walls = sorted(r["wall_s"] for r in runs)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "system"}
        print(f"| {system} | {walls[0]:.1f} / {statistics.median(walls):.1f} s | {med['efficiency']:.2f} | "
              f"{med['calls_per_s']:.0f} | {med['cpu_ms_per_call']:.2f} | {max(r['peak_rss_mb'] for r in runs)} | "
              f"{med['first_call_s']:.1f} s | {med['after_last_s']:.1f} s | {ours / med['wall_s']:.2f} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--library":
        library_run(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        if sys.argv[2] == "asyncio":
            peer_asyncio(sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
        elif sys.argv[2] in PEERS:
            {"curator": peer_curator, "data_designer": peer_data_designer}[sys.argv[2]](
                sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
        else:
            peer_threads(sys.argv[3], sys.argv[4], sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latencies", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--peers", nargs="*", choices=sorted(PEERS), default=[],
                        help="also these, each installed on first use into benchmarks/.venvs/NAME")
    parser.add_argument("--server-running", action="store_true",
                        help="also personasim with a Prefect server already running (PREFECT_API_URL set)")
    parser.add_argument("--library", action="store_true",
                        help="also personasim's library alone: the engine without Prefect or the datasets")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for latency in args.latencies:
            plan = Path(tmp) / f"plan-{latency}.json"
            ours = ["personasim", *(["personasim_server"] if args.server_running else []),
                    *(["personasim_library"] if args.library else [])]
            rows: dict[str, list[dict]] = {**{system: [] for system in ours}, "asyncio": [], "threads": [],
                                           **{peer: [] for peer in args.peers}}
            for _ in range(args.repeat):
                for system in rows:  # interleaved: a slow spell of the machine hits every system alike
                    rows[system].append(measure(system, args.pairs, latency, args.concurrency, plan))
            table(latency, rows)


if __name__ == "__main__":
    main()
