"""The engine: every pair through its stages, side by side, with one retry policy and durable storage.

The library's batch API and the Prefect tasks both call it; Prefect only decides which pairs go
to which task run and when waves are committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol

from personasim.config import PersonasimConfig, RetryPolicy
from personasim.distractor import Distractor, build_distractor
from personasim.engine.stages import Roles, Stages
from personasim.errors import LLMCallError
from personasim.llm.factory import RoleClients, build_clients
from personasim.llm.ledger import Ledger, SpendSink, UsageLog
from personasim.records import Failure, Interaction, Outcome, Pair, Stage
from personasim.roles.assistant import AssistantModel
from personasim.roles.style_transfer import StyleTransfer
from personasim.roles.user_simulator import UserFeedbackModel

log = logging.getLogger("personasim.engine")


class InteractionStore(Protocol):
    """Where each interaction is saved the moment it is done (a directory, or object storage)."""

    def save(self, interaction: Interaction) -> str: ...

    def ids(self) -> list[str]: ...

    def load_interaction(self, interaction_id: str) -> Interaction: ...


@dataclass(frozen=True)
class Triage:
    """What a run must do with its pairs: skip (in the dataset), recover (stored), generate."""

    skipped: list[str]
    recover: list[str]
    todo: list[Pair]


def build_roles(config: PersonasimConfig, clients: RoleClients, distractor: Distractor | None,
                usage: UsageLog | None = None) -> Roles:
    gen, contracts = config.spec.generation, config.spec.contracts
    return Roles(StyleTransfer(clients.style_transfer, gen.transfer_probability, contracts),
                 AssistantModel(clients.assistant_pool, seed=config.seed, usage=usage, contracts=contracts),
                 UserFeedbackModel(clients.user_simulator, gen.min_turns, gen.max_turns, usage, contracts),
                 distractor)


def configured_distractor(config: PersonasimConfig, clients: RoleClients, usage: UsageLog | None = None
                          ) -> Distractor | None:
    """The distractor the config describes, or None when noise is off."""
    settings = config.spec.distractor
    if not settings.enabled or settings.activation_probability <= 0:
        return None
    return build_distractor(config, clients.distractor, settings.type == "semantic", usage)


class Engine:
    """One run's generation. Built once per run (per worker process) and passed to whoever needs it."""

    def __init__(self, config: PersonasimConfig, roles: Roles, clients: RoleClients, *,
                 store: InteractionStore | None = None, concurrency: int = 8, spent: UsageLog | None = None) -> None:
        self.config = config
        self.stages = Stages(config.spec, roles)
        self.clients = clients
        self.retry: RetryPolicy = config.retry
        self.store = store
        self.concurrency = concurrency
        self.spent = spent or UsageLog()
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_config(cls, config: PersonasimConfig, *, store: InteractionStore | None = None,
                    concurrency: int = 8, spend: SpendSink | None = None) -> Engine:
        """Clients, roles and the configured distractor, built once. With a `spend` sink (a
        pipeline run) every call goes there as it returns and only totals stay in memory."""
        clients = build_clients(config)
        spent = UsageLog(keep=spend is None, sink=spend)
        roles = build_roles(config, clients, configured_distractor(config, clients, spent), spent)
        return cls(config, roles, clients, store=store, concurrency=concurrency, spent=spent)

    def interaction_id(self, pair: Pair) -> str:
        return self.stages.interaction_id(pair)

    # -- one pair -------------------------------------------------------------------------------
    def generate(self, pair: Pair, target_turns: int | None = None) -> Outcome:
        """The pair's interaction (stored, when the engine has a store), or its failure.

        A transient failure retries the pair from the start, up to `retry.pair_attempts` times; a
        permanent one fails it at once. Every call made on the way is in the record's usage.
        """
        interaction_id = self.interaction_id(pair)
        ledger = Ledger(interaction_id, self.spent)
        attempts = self.retry.pair_attempts
        for attempt in range(1, attempts + 1):
            stage: Stage = "style_transfer"
            try:
                plan = self.stages.plan(pair, interaction_id, ledger, target_turns)
                stage = "noise"
                first = self.stages.noise(interaction_id, 1, plan.initial_query, ledger)
                stage = "turn_loop"
                interaction = self.stages.converse(plan, first, ledger)
            except LLMCallError as exc:
                if exc.permanent or attempt == attempts:
                    log.warning("no interaction for %s: %s", pair.source or pair.persona_id, exc)
                    return Failure(interaction_id, pair.persona_id, pair.query_id, pair.original_query,
                                   pair.source, stage, str(exc), attempt, exc.permanent, tuple(ledger.usage),
                                   tuple(ledger.violations))
                log.warning("pair %s/%s failed (attempt %d of %d): %s", pair.persona_id, pair.query_key,
                            attempt, attempts, exc)
                continue
            if self.store is not None:
                self.store.save(interaction)
            return interaction
        raise AssertionError("unreachable: the last attempt returns")

    # -- many pairs -----------------------------------------------------------------------------
    @property
    def pool(self) -> Executor:
        """The run's pair pool: `concurrency` pairs in flight, whatever batch they came in."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="personasim-pair")
        return self._pool

    def run(self, pairs: Sequence[Pair], *, pool: Executor | None = None,
            on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """Every pair's outcome, in input order. A storage failure stops the batch at once
        (going on would pay for work that cannot be kept)."""
        futures: dict[Future[Outcome], int] = {(pool or self.pool).submit(self.generate, p): i
                                               for i, p in enumerate(pairs)}
        outcomes: dict[int, Outcome] = {}
        try:
            for future in as_completed(futures):
                outcomes[futures[future]] = outcome = future.result()
                if on_outcome is not None:
                    on_outcome(outcome)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return [outcomes[i] for i in range(len(pairs))]

    # -- stored work ----------------------------------------------------------------------------
    def triage(self, pairs: Iterable[Pair], in_dataset: set[str]) -> Triage:
        """Pairs whose interaction is in the dataset are skipped; stored ones are recovered, not regenerated."""
        stored = set(self.store.ids()) if self.store is not None else set()
        skipped, recover, todo = [], [], []
        for pair in pairs:
            interaction_id = self.interaction_id(pair)
            if interaction_id in in_dataset:
                skipped.append(interaction_id)
            elif interaction_id in stored:
                recover.append(interaction_id)
            else:
                todo.append(pair)
        return Triage(skipped, recover, todo)

    def recover(self, interaction_ids: Iterable[str]) -> list[Interaction]:
        if self.store is None:
            return []
        return [self.store.load_interaction(i) for i in interaction_ids]

    def close(self) -> None:
        """Let the pair pool's threads and the clients' connections (and a local model server) go."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.clients.close()
