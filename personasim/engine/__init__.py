"""The engine: the stages over pairs, Prefect-free. See `Engine`."""

from personasim.engine.engine import Engine, InteractionStore, Triage, build_roles, configured_distractor
from personasim.engine.stages import Roles, Stages, interaction_id_for

__all__ = ["Engine", "InteractionStore", "Roles", "Stages", "Triage", "build_roles", "configured_distractor",
           "interaction_id_for"]
