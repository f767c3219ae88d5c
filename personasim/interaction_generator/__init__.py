"""Multi-turn dialogue generation: the reference Interaction API under `personasim.interaction_generator`."""

from personasim.engine import interaction_id_for
from personasim.interaction_generator.generator import InteractionGenerator
from personasim.interaction_generator.storage import InteractionStorage
from personasim.records import Failure, Interaction, Message, Plan
from personasim.roles.assistant import AssistantModel
from personasim.roles.user_simulator import UserFeedbackModel

__all__ = [
    "AssistantModel",
    "Failure",
    "Interaction",
    "InteractionGenerator",
    "InteractionStorage",
    "Message",
    "Plan",
    "UserFeedbackModel",
    "interaction_id_for",
]
