"""Multi-turn interaction generation: style transfer, real-time noise, the turn loop, storage."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from personasim.config import PersonasimConfig, load_config
from personasim.distractor import DistractorModel, NoiseResult, SemanticDistractorModel
from personasim.errors import LLMCallError, StorageError
from personasim.interaction_generator.assistant import AssistantModel
from personasim.interaction_generator.messages import Interaction, Message
from personasim.interaction_generator.storage import InteractionStorage
from personasim.interaction_generator.user_feedback import UserFeedbackModel
from personasim.llm.factory import RoleClients, build_clients
from personasim.llm.usage import UsageRecord, UsageTracker, usage_scope, usage_totals
from personasim.pairs import Pair, expand_pairs
from personasim.rng import stream
from personasim.style_transfer import StyleTransfer

log = logging.getLogger("personasim.generator")

Distractor = DistractorModel | SemanticDistractorModel


@dataclass(frozen=True)
class PairPlan:
    """What is decided before the conversation starts; small, so it can travel between tasks."""

    pair: Pair
    interaction_id: str
    initial_query: str
    style_transferred: bool
    target_turns: int
    usage: tuple[UsageRecord, ...] = ()  # calls made so far for this pair (style transfer, initial noise)


@dataclass(frozen=True)
class PairFailure:
    """A pair that produced no interaction, and why."""

    interaction_id: str
    persona_id: str
    query_id: str | None
    original_query: str
    source: str
    reason: str
    attempts: int
    stage: str = "generate"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def interaction_id_for(pair: Pair, seed: int, fingerprint: str) -> str:
    """Stable across reruns of the same pair, seed and config, so a rerun finds what is stored."""
    digest = hashlib.sha256("\x1f".join((pair.persona_id, pair.query_key, str(seed), fingerprint)).encode())
    return "ix-" + digest.hexdigest()[:24]


def noise_summary(results: list[NoiseResult]) -> dict[str, Any]:
    noised = [r for r in results if r.was_noised]
    return {
        "user_turns": len(results),
        "noised_turns": len(noised),
        "layers": [r.layer for r in noised],
        "strategies": sorted({s for r in noised for s in r.applied_strategies}),
        "fallbacks": [r.metadata["fallback_reason"] for r in results if "fallback_reason" in r.metadata],
    }


class InteractionGenerator:
    """Generates multi-turn interactions with real-time noise injection.

    Every random choice for a pair (style transfer or not, target turns, pool model, noise per
    turn) comes from streams seeded by (seed, interaction id, purpose): reproducible per pair
    whatever the number of workers.
    """

    def __init__(self, config: Mapping[str, Any] | PersonasimConfig | str | None,
                 distractor: Distractor | None = None, *, clients: RoleClients | None = None) -> None:
        self.config = load_config(config)
        if clients is None:
            shared = getattr(getattr(distractor, "llm", None), "tracker", None)
            clients = build_clients(self.config, shared or UsageTracker())
        self.clients = clients
        self.tracker = clients.tracker
        self.distractor = distractor
        gen = self.config.generation
        self.seed = self.config.seed
        self.fingerprint = self.config.fingerprint()
        self.assistant = AssistantModel(clients.assistant_pool, seed=self.seed)
        self.user_feedback = UserFeedbackModel(clients.user_simulator, gen.min_turns, gen.max_turns)
        self.style_transfer = StyleTransfer(clients.style_transfer, gen.transfer_probability)
        self.failures: list[PairFailure] = []
        self._failures_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | PersonasimConfig | str | None,
                    tracker: UsageTracker | None = None) -> InteractionGenerator:
        """A generator with the distractor the config describes, all roles sharing one usage tracker."""
        cfg = load_config(config)
        clients = build_clients(cfg, tracker)
        distractor: Distractor | None = None
        if cfg.distractor.enabled and cfg.distractor.activation_probability > 0:
            kind = SemanticDistractorModel if cfg.distractor.type == "semantic" else DistractorModel
            distractor = kind(cfg.distractor, clients.distractor, seed=cfg.seed)
        return cls(cfg, distractor, clients=clients)

    # -- the steps, usable one by one (the Prefect tasks call them) -----------------------------
    def interaction_id_for(self, pair: Pair) -> str:
        return interaction_id_for(pair, self.seed, self.fingerprint)

    def plan(self, pair: Pair, target_turns: int | None = None) -> PairPlan:
        """Style transfer (unless an adapted query is given) and the conversation's target length."""
        interaction_id = self.interaction_id_for(pair)
        gen = self.config.generation
        with usage_scope(interaction_id) as records:
            if pair.adapted_query is not None:
                initial, transferred = pair.adapted_query, False
            else:
                result = self.style_transfer.transfer(pair.original_query, pair.persona_features,
                                                      stream(self.seed, interaction_id, "transfer"))
                initial, transferred = result.initial_query, result.transferred
        target = target_turns or pair.target_turns or gen.target_turns
        if target is None:
            target = stream(self.seed, interaction_id, "turns").randint(gen.min_turns, gen.max_turns)
        target = max(gen.min_turns, min(gen.max_turns, target))
        return PairPlan(pair, interaction_id, initial, transferred, target, tuple(records))

    def noise_turn(self, interaction_id: str, turn: int, text: str) -> NoiseResult:
        """Noise for one user turn, from the turn's own random stream."""
        if self.distractor is None:
            return NoiseResult.clean(text, activated=False)
        with usage_scope(interaction_id):
            return self.distractor.inject_noise(text, rng=stream(self.seed, interaction_id, "distractor", turn))

    def converse(self, plan: PairPlan, initial_noise: NoiseResult | None = None) -> Interaction:
        """The turn loop: the assistant sees noisy text; follow-ups are noised as they are written."""
        pair = plan.pair
        messages: list[Message] = []
        client = self.assistant.lock_model(stream(self.seed, plan.interaction_id, "pool"))
        stop_reason = "target_reached"
        try:
            with usage_scope(plan.interaction_id) as records:
                noise = initial_noise or self.noise_turn(plan.interaction_id, 1, plan.initial_query)
                noise_results = [noise]
                turn = 1
                while True:
                    messages.append(Message("user", noise.noisy_text, metadata={
                        "turn": turn, "is_initial": turn == 1, "is_followup": turn > 1,
                        "was_noised": noise.was_noised, "clean_text": noise.original_text,
                        "noise": noise.to_dict() if noise.metadata.get("activated") else None,
                    }))
                    reply = self.assistant.respond(noise.noisy_text, messages[:-1], pair.system_prompt)
                    messages.append(Message("assistant", reply, metadata={
                        "turn": turn, "model": client.model, "provider": client.provider}))
                    follow_up = self.user_feedback.generate_feedback(
                        pair.persona_features, messages, reply, turn, plan.target_turns)
                    if follow_up is None:
                        if turn < min(plan.target_turns, self.config.generation.max_turns):
                            stop_reason = "satisfied"
                        break
                    turn += 1
                    noise = self.noise_turn(plan.interaction_id, turn, follow_up)
                    noise_results.append(noise)
        finally:
            self.assistant.unlock_model()
        return Interaction(
            interaction_id=plan.interaction_id,
            persona_id=pair.persona_id,
            persona_features=dict(pair.persona_features),
            original_query=pair.original_query,
            initial_query=plan.initial_query,
            messages=messages,
            num_turns=turn,
            query_id=pair.query_id,
            metadata={
                "assistant_model": client.model,
                "assistant_provider": client.provider,
                "target_turns": plan.target_turns,
                "stop_reason": stop_reason,
                "style_transferred": plan.style_transferred,
                "system_prompt": pair.system_prompt,
                "noise": noise_summary(noise_results),
                "token_usage": usage_totals([*plan.usage, *records]),
                "config_fingerprint": self.fingerprint,
                "seed": self.seed,
                "pair_metadata": dict(pair.metadata),
            },
        )

    def generate_for_pair(self, pair: Pair, target_turns: int | None = None) -> Interaction:
        """All steps, retrying the pair up to `interaction_attempts` times; raises LLMCallError at the end."""
        attempts = self.config.generation.interaction_attempts
        attempt = 1
        while True:
            try:
                return self.converse(self.plan(pair, target_turns))
            except LLMCallError as exc:
                if attempt >= attempts:
                    raise LLMCallError(f"{exc} (pair failed {attempts} time(s))") from None
                log.warning("pair %s/%s failed (attempt %d of %d): %s", pair.persona_id, pair.query_key,
                            attempt, attempts, exc)
                attempt += 1

    # -- the reference API --------------------------------------------------------------------
    def _record_failure(self, pair: Pair, exc: Exception) -> PairFailure:
        failure = PairFailure(self.interaction_id_for(pair), pair.persona_id, pair.query_id, pair.original_query,
                              pair.source, str(exc), self.config.generation.interaction_attempts)
        with self._failures_lock:
            self.failures.append(failure)
        log.warning("no interaction for %s: %s", pair.source or pair.persona_id, exc)
        return failure

    def generate_interaction(self, persona_id: str, persona_features: dict[str, str], initial_query: str,
                             system_prompt: str | None = None, original_query: str | None = None,
                             target_turns: int = 3, query_id: str | None = None) -> Interaction | None:
        """One interaction from an already style-transferred query; None (and a recorded failure) if it fails."""
        pair = expand_pairs([("generate_interaction", {
            "persona_id": persona_id, "persona_features": persona_features,
            "original_query": original_query or initial_query, "adapted_query": initial_query,
            "query_id": query_id, "system_prompt": system_prompt,
        })])[0]
        try:
            return self.generate_for_pair(pair, target_turns)
        except LLMCallError as exc:
            self._record_failure(pair, exc)
            return None

    def generate_interactions_batch(self, personas_with_queries: list[dict[str, Any]], show_progress: bool = True,
                                    max_workers: int = 5,
                                    storage: InteractionStorage | None = None) -> list[Interaction]:
        """Interactions for every persona-query pair, `max_workers` at a time, in input order.

        Each is saved to `storage` the moment it is done; pairs already stored there are loaded,
        not regenerated. Failed pairs are left out of the result and listed in `self.failures`.
        A storage failure stops the batch at once (continuing would pay for work it cannot keep).
        """
        pairs = expand_pairs((f"personas_with_queries[{i}]", r) for i, r in enumerate(personas_with_queries))
        done: dict[int, Interaction] = {}
        todo: list[tuple[int, Pair]] = []
        for index, pair in enumerate(pairs):
            interaction_id = self.interaction_id_for(pair)
            if storage is not None and storage.exists(interaction_id):
                done[index] = storage.load_interaction(interaction_id)
            else:
                todo.append((index, pair))

        def work(pair: Pair) -> Interaction:
            interaction = self.generate_for_pair(pair)
            if storage is not None:
                storage.save(interaction)
            return interaction

        columns = (TextColumn("[bold]generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, disable=not show_progress) as progress, \
                ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="personasim") as pool:
            bar = progress.add_task("pairs", total=len(pairs), completed=len(done))
            futures = {pool.submit(work, pair): (index, pair) for index, pair in todo}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    index, pair = futures[future]
                    try:
                        done[index] = future.result()
                    except LLMCallError as exc:
                        self._record_failure(pair, exc)
                    except StorageError:
                        for other in pending:
                            other.cancel()
                        raise
                    progress.advance(bar)
        return [done[i] for i in sorted(done)]
