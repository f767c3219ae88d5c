"""Outcomes into committed waves as pairs end, counted for the run's progress and summary, the
Prefect progress artifact moving with them (online batches of pairs and batch-API runs alike)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from uuid import UUID

from prefect.artifacts import update_progress_artifact

from personasim.progress import RunProgress
from personasim.records import Failure, Outcome
from personasim.run_handle import RunHandle
from personasim.tasks.datasets import write_wave_task
from personasim.tasks.prefect_compat import Sealed

ARTIFACT_EVERY_S = 2.0  # the progress artifact moves as pairs end, at most this often


@dataclass
class Tally:
    """What this run's interactions were like, for its summary (counts and cost: RunProgress)."""

    recovered: int = 0
    turns: int = 0
    user_turns: int = 0
    noised_turns: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, Failure):
                if len(self.failures) < 5:
                    self.failures.append(f"{outcome.persona_id}/{outcome.query_id or outcome.original_query[:30]}: "
                                         f"{outcome.reason}")
                continue
            self.turns += outcome.num_turns
            self.user_turns += outcome.user_turns
            self.noised_turns += outcome.noised_turns


class Waves:
    """Outcomes as they come back: counted, and written as a wave once `size` of them are waiting."""

    def __init__(self, run: RunHandle, run_date: str, size: int, progress: RunProgress, tally: Tally,
                 progress_id: UUID | None) -> None:
        self.run, self.run_date, self.size = run, run_date, size
        self.progress, self.tally, self.progress_id = progress, tally, progress_id
        self._wave: list[Outcome] = []
        self._written = 0
        self._shown, self._shown_at = -1, 0.0

    def add(self, outcomes: list[Outcome]) -> None:
        self.progress.add(outcomes)
        self.tally.add(outcomes)
        self._wave.extend(outcomes)
        if len(self._wave) >= self.size:
            self.flush()

    def add_one(self, outcome: Outcome) -> None:
        """A pair that ended on its own (a batch run's): counted, waved, and shown."""
        self.add([outcome])
        self.tick()

    def flush(self) -> None:
        if self._wave:
            write_wave_task(self.run, f"{self.run.run_id}-w{self._written:05d}", self.run_date, Sealed(self._wave))
            self._wave, self._written = [], self._written + 1

    def tick(self) -> None:
        """The progress artifact to the pairs ended so far, at most every ARTIFACT_EVERY_S."""
        finished = self.progress.snapshot().finished
        if self.progress_id is not None and finished != self._shown and \
                time.monotonic() - self._shown_at >= ARTIFACT_EVERY_S:
            update_progress_artifact(self.progress_id, 100.0 * finished / max(1, self.progress.total))
            self._shown, self._shown_at = finished, time.monotonic()
