"""`personasim report`: one self-contained HTML file (inline CSS, JS and SVG; no network, works
from file://) with a dataset's summary, its plots and a conversation browser."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from personasim.dataset.figures import html, markdown
from personasim.dataset.flags import FLAGS
from personasim.dataset.identity import variants
from personasim.dataset.persona_stats import persona_rows
from personasim.dataset.quality import as_markdown, summary_rows
from personasim.dataset.stats import count_rows
from personasim.dataset.store import Dataset
from personasim.errors import PersonasimError
from personasim.fsio import atomic_write_bytes
from personasim.report.charts import bar_chart
from personasim.report.conversations import sample_conversations
from personasim.report.judged import judged_charts, judged_tables

MAX_CONVERSATIONS = 2000  # conversations in the browser; the summary and plots count every one
REPORT = "report.html"


def _asset(name: str) -> str:
    return resources.files("personasim.report").joinpath(name).read_text(encoding="utf-8")


def _table(caption: str, header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _usd(value: float | None) -> str:
    return "no price" if value is None else f"{value:.6f}"


TALLY_HEADERS = ("calls", "batch calls", "input tokens", "cached input", "output tokens", "cost (USD)")


def _tally(totals: dict[str, int]) -> list[str]:
    """A stage's or a model's calls and tokens (books written before batches and the cache count 0 of each)."""
    return [f"{totals.get(key, 0):,}" for key in ("calls", "batch_calls", "input_tokens", "cached_tokens",
                                                    "output_tokens")]


def _summary(stats: dict[str, Any], held: list[dict[str, Any]]) -> str:
    tokens, cost = stats["tokens"], stats["cost"]
    by_stage_cost = cost.get("by_module", {})
    stages = [[module, *_tally(t), _usd(by_stage_cost.get(module))]
              for module, t in sorted(tokens["by_module"].items())]
    models = [[model, *_tally(t), _usd(cost["by_model"].get(model))]
              for model, t in sorted(tokens["by_model"].items())]
    assistants = [[model, n] for model, n in stats["assistant_model_distribution"].items()]
    variant_rows = [[v["fingerprint"], v["seed"], stats["variants"].get(v["fingerprint"], {}).get("interactions", 0)]
                    for v in held]
    return "".join([
        _table("counts", ["figure", "value"], [list(row) for row in count_rows(stats)]),
        _table("tokens and cost by stage", ["stage", *TALLY_HEADERS], stages),
        _table("tokens and cost by model", ["model", *TALLY_HEADERS], models),
        _table("assistant models", ["model", "interactions"], assistants),
        _table("variants (config fingerprint)", ["fingerprint", "seed", "interactions"], variant_rows),
        _table("quality", ["figure", "value"], [list(row) for row in summary_rows(stats["quality"])]),
        *_personas(stats.get("persona_stages")),
        *judged_tables(stats, _table),
        _table("failure reasons", ["reason", "pairs"], [[r, n] for r, n in stats["failure_reasons"].items()]),
    ])


def _personas(section: dict[str, Any] | None) -> list[str]:
    """The persona stages: their figures, and each dimension's value shares against its target."""
    if not section:
        return []
    dimensions = [[name, c["present"], ", ".join(f"{v} {e['share']}" + (f" ({e['target']})" if "target" in e else "")
                                                 for v, e in c["values"].items()), c.get("max_gap", "-")]
                  for name, c in section["coverage"].items()]
    return [_table("personas", ["figure", "value"], [list(row) for row in persona_rows(section)]),
            _table("persona coverage: each value's share of the personas with the dimension (target)",
                   ["dimension", "present", "values", "largest gap"], dimensions)]


def _charts(stats: dict[str, Any]) -> str:
    quality, tokens = stats["quality"], stats["tokens"]
    mix = quality["layer_mix"]
    return "".join([
        bar_chart("turns per conversation", {f"{k} turns": v for k, v in stats["turn_distribution"].items()}),
        bar_chart("termination reasons", quality["termination_reasons"]),
        bar_chart("noise layer share", mix["share"], reference=mix.get("configured"), reference_label="configured"),
        bar_chart("tokens per stage (in + out)",
                  {m: t["input_tokens"] + t["output_tokens"] for m, t in tokens["by_module"].items()}),
        bar_chart("cost per stage (USD)", {m: usd for m, usd in stats["cost"].get("by_module", {}).items()
                                           if usd is not None}, empty="no stage has a price for all its models"),
        *judged_charts(stats),
    ])


def _embed(data: Any) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' survives to close the element early."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_report(dataset: Dataset, max_conversations: int = MAX_CONVERSATIONS) -> str:
    """The report's HTML; needs the dataset's stats.json (written at the end of every run)."""
    stats = dataset.read_json("stats.json")
    if stats is None:
        raise PersonasimError(f"{dataset.root}: no stats.json (not a personasim dataset, or no run finished)")
    conversations, total = sample_conversations(dataset, max_conversations)
    shown = (f"all {total:,} conversations" if len(conversations) == total else
             f"{len(conversations):,} of {total:,} conversations: the same sample on every build "
             f"(lowest interaction ids; --max-conversations changes the size)")
    page = Template(_asset("template.html"))
    return page.substitute(
        title=escape(f"personasim report: {dataset.root}"), root=escape(str(dataset.root)),
        built=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), style=_asset("report.css"),
        summary=_summary(stats, variants(dataset)), charts=_charts(stats), shown=escape(shown),
        data=_embed({"conversations": conversations, "flags": list(FLAGS)}), script=_asset("report.js"))


def write_report(dataset: Dataset, to: str | None = None, max_conversations: int = MAX_CONVERSATIONS
                 ) -> tuple[str, float]:
    """Write the report to `to` (default: report.html in the dataset), atomically; its path and
    the seconds it took."""
    started = time.perf_counter()
    html = render_report(dataset, max_conversations).encode("utf-8")
    if to is None:
        dataset.write_file(REPORT, html)
        path = dataset.url(REPORT)
    else:
        Path(to).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(Path(to), html)
        path = to
    return path, time.perf_counter() - started


def report_link(path: str) -> str:
    """A link a browser opens: file:// for a local report, the object-store URL otherwise."""
    return path if "://" in path else Path(path).resolve().as_uri()


def report_markdown(stats: dict[str, Any], report: str) -> str:
    """The report's summary as markdown, linking the HTML file (the Prefect UI's artifact)."""
    return "\n".join([f"**Report:** [{report}]({report_link(report)}) (one HTML file: plots and a conversation "
                      "browser)", "", "| dataset | value |", "| --- | --- |",
                      *(f"| {name} | {markdown(value)} |" for name, value in count_rows(stats)), "",
                      as_markdown(stats["quality"])])
