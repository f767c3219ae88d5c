"""What a run shows in Prefect: artifacts keyed per dataset on the flow run, and a final state
that tells the truth (Failed when no pair succeeded or too many failed, Cancelled when stopped)."""

from __future__ import annotations

import hashlib
import re
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
)
from prefect.states import Cancelled, Completed, Failed, State

from personasim.report import report_markdown
from personasim.report.page import report_link

_SUMMARY_KEYS = ("pairs", "done", "failed", "skipped", "recovered", "turns", "noise_rate", "llm_calls",
                 "input_tokens", "output_tokens", "cost_usd")


class RunEnded(Exception):
    """A run that did not complete as asked; `summary` is everything it did (committed and counted)."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


class RunFailed(RunEnded):
    """No pair succeeded, or more failed than the run's max_failure_ratio allows."""


class RunInterrupted(RunEnded):
    """Stopped by Ctrl-C, SIGTERM or a cancellation: what was done is committed, a rerun resumes."""


def dataset_key(root: str) -> str:
    """An artifact key naming the dataset: lowercase letters, digits and dashes, unique per root."""
    slug = re.sub(r"[^a-z0-9]+", "-", root.lower()).strip("-")[-40:].strip("-") or "dataset"
    return f"personasim-{slug}-{hashlib.sha256(root.encode()).hexdigest()[:8]}"


def progress_artifact(root: str) -> UUID:
    """The run's progress bar (percent of its pairs finished), updated as waves commit."""
    return cast(UUID, create_progress_artifact(0.0, key=f"{dataset_key(root)}-progress",
                                               description=f"pairs of this run finished, into {root}"))


def publish_artifacts(summary: dict[str, Any]) -> None:
    """The summary table, the dataset's report summary (markdown) and a link to its HTML report."""
    root, run_id = summary["dataset_root"], summary["run_id"]
    key = dataset_key(root)
    create_table_artifact(key=f"{key}-summary", table=[{"metric": k, "value": summary[k]} for k in _SUMMARY_KEYS],
                          description=f"personasim run {run_id} into {root}")
    create_markdown_artifact(key=f"{key}-report", markdown=report_markdown(summary["statistics"], summary["report"]),
                             description=f"the dataset {root} after run {run_id}")
    create_link_artifact(report_link(summary["report"]), link_text=f"report of {root}", key=f"{key}-report-link",
                         description="the dataset's HTML report: plots and a conversation browser")


def final_state(summary: dict[str, Any], max_failure_ratio: float | None) -> State[Any]:
    """Completed with the counts, unless nothing succeeded, too much failed, or the run was stopped."""
    done, failed = summary["done"], summary["failed"]
    counts = (f"{done} done, {failed} failed, {summary['skipped']} skipped, {summary['not_started']} not started "
              f"(of {summary['pairs']} pairs)")
    if summary["stopped"] == "interrupted":
        message = f"interrupted: {counts}; what was done is committed, a rerun resumes"
        return Cancelled(message=message, data=RunInterrupted(message, summary))
    finished = done + failed
    if failed and not done and not summary["skipped"]:
        message = f"no pair succeeded: {counts}; first failures: {'; '.join(summary['failures'][:3])}"
        return Failed(message=message, data=RunFailed(message, summary))
    if max_failure_ratio is not None and finished and failed / finished > max_failure_ratio:
        message = f"{failed / finished:.0%} of pairs failed (max_failure_ratio {max_failure_ratio}): {counts}"
        return Failed(message=message, data=RunFailed(message, summary))
    stopped = "; stopped by the budget, a rerun resumes" if summary["stopped"] == "budget" else ""
    return Completed(message=counts + stopped, data=summary)
