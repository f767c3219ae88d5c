"""What the judge scores: its axes and their rubrics (run options: scores do not change a
conversation, so none of this is in the dataset's fingerprint). The judge's model is `llm.judge`."""

from __future__ import annotations

from pydantic import Field, field_validator

from personasim.config.spec import Section

# Each axis's rubric is a prompt file beside the package's prompts (judge.axis.<name>.txt); a
# config's `judging.rubrics` replaces one, or adds an axis of its own.
DEFAULT_AXES = ("persona_adherence", "naturalness", "stop_timing", "personalization", "helpfulness", "coherence")


class JudgingSettings(Section):
    axes: tuple[str, ...] = Field(DEFAULT_AXES, min_length=1)
    rubrics: dict[str, str] = Field(default_factory=dict, description="axis -> rubric text (from a file)")
    in_run: bool = Field(True, description="score each conversation as it is made; else `personasim judge`")

    @field_validator("axes")
    @classmethod
    def _names(cls, axes: tuple[str, ...]) -> tuple[str, ...]:
        for axis in axes:
            if not axis.replace("_", "").isalnum():
                raise ValueError(f"axis {axis!r}: letters, digits and _ only")
        if len(set(axes)) != len(axes):
            raise ValueError("an axis is listed twice")
        return axes

    def rubric(self, axis: str) -> str:
        """The axis's rubric: the config's file, else the package's own; KeyError names an axis with neither."""
        if axis in self.rubrics:
            return self.rubrics[axis]
        from personasim.prompts import render

        return render(f"judge.axis.{axis}")
