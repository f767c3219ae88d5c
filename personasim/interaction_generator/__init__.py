"""Multi-turn dialogue generation: the reference Interaction API under `personasim.interaction_generator`."""

from personasim.interaction_generator.assistant import AssistantModel
from personasim.interaction_generator.generator import (
    InteractionGenerator,
    PairFailure,
    PairPlan,
    interaction_id_for,
)
from personasim.interaction_generator.messages import Interaction, Message
from personasim.interaction_generator.storage import InteractionStorage
from personasim.interaction_generator.user_feedback import UserFeedbackModel

__all__ = [
    "AssistantModel",
    "Interaction",
    "InteractionGenerator",
    "InteractionStorage",
    "Message",
    "PairFailure",
    "PairPlan",
    "UserFeedbackModel",
    "interaction_id_for",
]
