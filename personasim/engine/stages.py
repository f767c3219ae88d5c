"""The stages of one pair: plan (style transfer, target length), noise, the turn loop.

Every random choice comes from a stream named by (seed, interaction id, purpose), so a pair's
conversation is the same whatever thread, process or batch runs it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from personasim.config import GenerationSpec
from personasim.config.judging import JudgingSettings
from personasim.distractor import Distractor
from personasim.errors import ContextExceeded
from personasim.judgement import Score
from personasim.llm.ledger import Ledger
from personasim.llm.repair import ContractViolation
from personasim.records import Interaction, Message, NoiseResult, Pair, Plan, Termination
from personasim.rng import stream
from personasim.roles.assistant import AssistantModel
from personasim.roles.judge import Judge
from personasim.roles.style_transfer import Rewrite, StyleTransfer
from personasim.roles.user_simulator import UserFeedbackModel

log = logging.getLogger("personasim.engine")


def interaction_id_for(pair: Pair, seed: int, fingerprint: str) -> str:
    """Stable across reruns of the same pair, seed and spec, so a rerun finds what is stored."""
    digest = hashlib.sha256("\x1f".join((pair.persona_id, pair.query_key, str(seed), fingerprint)).encode())
    return "ix-" + digest.hexdigest()[:24]


@dataclass(frozen=True)
class Roles:
    """The four roles of a run, built once and shared by every pair."""

    style_transfer: StyleTransfer
    assistant: AssistantModel
    user: UserFeedbackModel
    distractor: Distractor | None
    judge: Judge | None = None


class Stages:
    def __init__(self, spec: GenerationSpec, roles: Roles, judging: JudgingSettings | None = None) -> None:
        self.spec = spec
        self.roles = roles
        self.judging = judging or JudgingSettings()
        self.seed = spec.seed
        self.fingerprint = spec.fingerprint()

    def interaction_id(self, pair: Pair) -> str:
        return interaction_id_for(pair, self.seed, self.fingerprint)

    def plan(self, pair: Pair, interaction_id: str, ledger: Ledger, target_turns: int | None = None) -> Plan:
        """Style transfer (unless an adapted query is given) and the conversation's target length."""
        if pair.adapted_query is not None:
            rewrite = Rewrite(pair.adapted_query, False)
        else:
            rewrite = self.roles.style_transfer.rewrite(pair.original_query, pair.persona_features,
                                                        stream(self.seed, interaction_id, "transfer"), ledger)
        return Plan(pair, interaction_id, rewrite.text, rewrite.transferred,
                    self.target_turns(pair, interaction_id, target_turns), rewrite.fallback, rewrite.verdicts)

    def target_turns(self, pair: Pair, interaction_id: str, override: int | None = None) -> int:
        """The conversation's target length (as asked, the pair's, the config's, or drawn from the
        seed), known before any call: the engine starts the longest conversations first."""
        gen = self.spec.generation
        target = override or pair.target_turns or gen.target_turns
        if target is None:
            target = stream(self.seed, interaction_id, "turns").randint(gen.min_turns, gen.max_turns)
        return max(gen.min_turns, min(gen.max_turns, target))

    def noise(self, interaction_id: str, turn: int, text: str, ledger: Ledger) -> NoiseResult:
        """Noise for one user turn, from the turn's own random stream."""
        if self.roles.distractor is None:
            return NoiseResult.clean(text)
        return self.roles.distractor.noise(text, stream(self.seed, interaction_id, "distractor", turn), ledger)

    def converse(self, plan: Plan, first: NoiseResult, ledger: Ledger) -> Interaction:
        """The turn loop: the assistant sees noisy text; follow-ups are noised as they are written.

        A user simulator that breaks its contract for good ends the conversation there once
        `min_turns` are done (termination `contract_failure`), and fails the pair before that. A
        conversation about to outgrow its model's context ends the same way (`context_limit`), its
        last complete turn kept.
        """
        pair, roles, gen = plan.pair, self.roles, self.spec.generation
        client = roles.assistant.choose(stream(self.seed, plan.interaction_id, "pool"))
        messages: list[Message] = []
        noise, turn, verdicts = first, 1, plan.verdicts
        end: Termination
        while True:
            messages.append(Message("user", noise.noisy_text, turn=turn, clean_text=noise.original_text, noise=noise,
                                    verdicts=verdicts))
            try:
                answer = roles.assistant.answer(client, noise.noisy_text, messages[:-1], pair.system_prompt, ledger)
            except ContextExceeded:
                if turn - 1 < gen.min_turns:
                    raise
                messages.pop()  # the turn the assistant had no room to answer
                end, turn = "context_limit", turn - 1
                break
            messages.append(Message("assistant", answer.text, turn=turn, model=client.model, provider=client.provider,
                                    finish_reason=answer.finish_reason, truncated=answer.truncated))
            try:
                follow_up = roles.user.next_turn(pair.persona_features, messages, turn, plan.target_turns, ledger)
            except (ContractViolation, ContextExceeded) as exc:
                if turn < gen.min_turns:
                    raise
                end = "context_limit" if isinstance(exc, ContextExceeded) else "contract_failure"
                break
            if follow_up is None:
                end = "satisfied" if turn < min(plan.target_turns, gen.max_turns) else (
                    "max_turns" if turn >= gen.max_turns else "target_reached")
                break
            turn += 1
            noise, verdicts = self.noise(plan.interaction_id, turn, follow_up.text, ledger), follow_up.verdicts
        scores = self.score(pair, messages, ledger)  # before the ledger is read: the judge's calls are the pair's
        return Interaction(
            interaction_id=plan.interaction_id, persona_id=pair.persona_id,
            persona_features=dict(pair.persona_features), original_query=pair.original_query,
            initial_query=plan.initial_query, messages=messages, num_turns=turn, query_id=pair.query_id,
            target_turns=plan.target_turns, termination_reason=end, style_transferred=plan.style_transferred,
            style_transfer_fallback=plan.style_transfer_fallback, violations=tuple(ledger.violations),
            system_prompt=pair.system_prompt, assistant_model=client.model, assistant_provider=client.provider,
            config_fingerprint=self.fingerprint, seed=self.seed, pair_metadata=dict(pair.metadata),
            usage=tuple(ledger.usage), scores=scores,
        )

    def score(self, pair: Pair, messages: Sequence[Message], ledger: Ledger) -> tuple[Score, ...]:
        """Every judge's scores of the conversation, when the run scores as it goes (a judge that
        cannot answer leaves its scores to `personasim judge`)."""
        judge = self.roles.judge
        if judge is None or not self.judging.in_run:
            return ()
        said = [(m.role, m.clean_text if m.role == "user" and m.clean_text is not None else m.content)
                for m in messages]
        scores, missing = judge.score(pair.persona_features, said, pair.system_prompt, ledger)
        for reason in missing:
            log.warning("no scores for %s/%s from %s", pair.persona_id, pair.query_key, reason)
        return tuple(scores)
