"""The reference Interaction API's generator, a thin face over the engine."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from personasim import progress as live  # its show_progress would clash with the parameter of that name
from personasim.config import PersonasimConfig, load_config
from personasim.distractor import Distractor
from personasim.engine import Engine, build_roles
from personasim.engine import configured_distractor as configured
from personasim.engine.engine import InteractionStore
from personasim.llm.factory import build_clients
from personasim.llm.ledger import UsageLog
from personasim.pairs import expand_pairs
from personasim.records import Failure, Interaction, Outcome, Pair
from personasim.roles.assistant import AssistantModel
from personasim.roles.user_simulator import UserFeedbackModel


class InteractionGenerator:
    """Generates multi-turn interactions with real-time noise injection.

    Every random choice for a pair (style transfer or not, target turns, pool model, noise per
    turn) comes from streams seeded by (seed, interaction id, purpose): reproducible per pair
    whatever the number of workers. `spent` holds every call made; `failures` every pair that
    produced nothing, with the reason.
    """

    def __init__(self, config: Mapping[str, Any] | PersonasimConfig | str | None,
                 distractor: Distractor | None = None, *, configured_distractor: bool = False) -> None:
        self.config = load_config(config)
        clients = build_clients(self.config)
        self.spent = UsageLog()
        if configured_distractor:
            distractor = configured(self.config, clients, self.spent)
        self.roles = build_roles(self.config, clients, distractor, self.spent)
        self.engine = Engine(self.config, self.roles, clients, spent=self.spent)
        self.failures: list[Failure] = []

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | PersonasimConfig | str | None) -> InteractionGenerator:
        """A generator with the distractor the config describes."""
        return cls(config, configured_distractor=True)

    @property
    def assistant(self) -> AssistantModel:
        return self.roles.assistant

    @property
    def user_feedback(self) -> UserFeedbackModel:
        return self.roles.user

    @property
    def distractor(self) -> Distractor | None:
        return self.roles.distractor

    def interaction_id_for(self, pair: Pair) -> str:
        return self.engine.interaction_id(pair)

    def _kept(self, outcome: Outcome | None) -> Interaction | None:
        if outcome is None:
            return None
        if isinstance(outcome, Failure):
            self.failures.append(outcome)
            return None
        return outcome

    def generate_interaction(self, persona_id: str, persona_features: dict[str, str], initial_query: str,
                             system_prompt: str | None = None, original_query: str | None = None,
                             target_turns: int = 3, query_id: str | None = None) -> Interaction | None:
        """One interaction from an already style-transferred query; None (and a recorded failure) if it fails."""
        [pair] = expand_pairs([("generate_interaction", {
            "persona_id": persona_id, "persona_features": persona_features,
            "original_query": original_query or initial_query, "adapted_query": initial_query,
            "query_id": query_id, "system_prompt": system_prompt,
        })])
        return self._kept(self.engine.generate(pair, target_turns))

    def generate_interactions_batch(self, personas_with_queries: list[dict[str, Any]], show_progress: bool = True,
                                    max_workers: int = 5,
                                    storage: InteractionStore | None = None) -> list[Interaction]:
        """Interactions for every persona-query pair, `max_workers` at a time, in input order.

        Each is saved to `storage` the moment it is done; pairs already stored there are loaded,
        not regenerated. Failed pairs are left out of the result and listed in `self.failures`.
        """
        pairs = expand_pairs((f"personas_with_queries[{i}]", r) for i, r in enumerate(personas_with_queries))
        self.engine.store = storage
        triage = self.engine.triage(pairs, in_dataset=set())
        done = {i.interaction_id: i for i in self.engine.recover(triage.recover)}
        progress = live.RunProgress(len(triage.todo), self.config.pricing, live=self.engine)
        with live.show_progress(progress, enabled=show_progress), \
                ThreadPoolExecutor(max_workers, thread_name_prefix="personasim") as pool:
            outcomes = self.engine.run(triage.todo, pool=pool, on_outcome=progress.add_one)
        for outcome in outcomes:
            kept = self._kept(outcome)
            if kept is not None:
                done[kept.interaction_id] = kept
        ids = [self.engine.interaction_id(p) for p in pairs]
        return [done[i] for i in ids if i in done]
