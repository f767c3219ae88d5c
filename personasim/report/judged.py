"""The report's judged sections: the judges' scores per axis (distribution, by judge and model,
agreement, the worst conversations with their reasons), the gate's verdicts and the users'
lexical realism, overall and by assistant model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from personasim.dataset.realism import METRICS
from personasim.report.charts import bar_chart

Table = Callable[[str, list[str], list[list[Any]]], str]


def judged_tables(stats: dict[str, Any], table: Table) -> list[str]:
    out = []
    judging = stats.get("judging")
    if judging:
        alpha = judging.get("agreement") or {}
        out.append(table(f"judges' scores ({judging['scored']} conversations; {', '.join(judging['judges'])})",
                         ["axis", "mean", "1-5 counts", "by judge", "by assistant model",
                          *(["agreement (alpha)"] if alpha else [])],
                         [[axis, f["mean"], " ".join(f"{k}:{v}" for k, v in f["distribution"].items()),
                           _pairs(f["by_judge"]), _pairs(f["by_assistant_model"]),
                           *([alpha.get(axis)] if alpha else [])] for axis, f in judging["axes"].items()]))
        out.append(table("lowest-scored conversations per axis", ["axis", "conversation", "score", "judge", "reason"],
                         [[axis, w["interaction_id"], w["score"], w["judge_model"], w["reason"]]
                          for axis, f in judging["axes"].items() for w in f["worst"]]))
    gate = stats.get("gate") or {}
    if gate.get("gated_turns"):
        out.append(table("the gate on user turns and rewrites", ["figure", "value"], [
            ["turns and rewrites gated", gate["gated_turns"]], ["needing more than one draft", gate["redrafted_turns"]],
            *([f"drafts, {stage}", _pairs(counts)] for stage, counts in gate["drafts"].items()),
            ["why drafts failed", _pairs(gate["failure_reasons"]) or "none"]]))
    realism = stats.get("realism") or {}
    if realism.get("conversations"):
        models = realism["by_assistant_model"]
        out.append(table("users' lexical realism (means over conversations)", ["figure", "all", *models],
                         [[metric, realism["overall"][metric], *(models[m][metric] for m in models)]
                          for metric in METRICS]))
    return out


def judged_charts(stats: dict[str, Any]) -> list[str]:
    judging = stats.get("judging") or {}
    return [bar_chart(f"{axis}: conversations by score", {f"score {k}": v for k, v in f["distribution"].items()})
            for axis, f in (judging.get("axes") or {}).items()]


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items())
