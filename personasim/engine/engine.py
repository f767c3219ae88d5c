"""The engine: every pair through its stages, side by side, with one retry policy and durable storage.

The library's batch API and the Prefect tasks both call it; Prefect only decides which pairs go
to which task run and when waves are committed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol

from personasim.config import PersonasimConfig, RetryPolicy
from personasim.distractor import Distractor, build_distractor
from personasim.engine.stages import Roles, Stages
from personasim.errors import LLMCallError
from personasim.llm.factory import RoleClients, build_clients
from personasim.llm.ledger import Ledger, Replay, SpendSink, UsageLog
from personasim.prompts import Prompts
from personasim.records import Failure, Interaction, Outcome, Pair, Stage
from personasim.roles.assistant import AssistantModel
from personasim.roles.judge import Judge
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
    spec = config.spec
    gen, contracts, prompts, gate = spec.generation, spec.contracts, Prompts(spec.prompts), spec.gate
    judge = Judge(clients.judges, config.judging) if clients.judges else None
    return Roles(StyleTransfer(clients.style_transfer, gen.transfer_probability, contracts, prompts, gate, judge),
                 AssistantModel(clients.assistant_pool, seed=config.seed, usage=usage, contracts=contracts),
                 UserFeedbackModel(clients.user_simulator, gen.min_turns, gen.max_turns, usage, contracts, prompts,
                                   gate, judge),
                 distractor, judge)


def configured_distractor(config: PersonasimConfig, clients: RoleClients, usage: UsageLog | None = None
                          ) -> Distractor | None:
    """The distractor the config describes, or None when noise is off."""
    settings = config.spec.distractor
    if not settings.enabled or settings.activation_probability <= 0:
        return None
    return build_distractor(config, clients.distractor, settings.type == "semantic", usage)


class PairTally:
    """Pairs ended in this process, counted from any thread as they end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = self.failed = 0

    def add(self, *, failed: bool) -> None:
        with self._lock:
            if failed:
                self.failed += 1
            else:
                self.done += 1


class Engine:
    """One run's generation. Built once per run (per worker process) and passed to whoever needs it."""

    def __init__(self, config: PersonasimConfig, roles: Roles, clients: RoleClients, *,
                 store: InteractionStore | None = None, concurrency: int = 8, spent: UsageLog | None = None,
                 budget_usd: float | None = None) -> None:
        self.config = config
        self.stages = Stages(config.spec, roles, config.judging)
        self.clients = clients
        self.retry: RetryPolicy = config.retry
        self.store = store
        self.concurrency = concurrency
        self.spent = spent or UsageLog()
        self.budget_usd = budget_usd
        self.stopped: str | None = None  # why no new pair starts: "budget", "interrupted"
        self.ended = PairTally()  # pairs this process finished, as they end (live progress)
        self._aborted = False
        self._pool: ThreadPoolExecutor | None = None
        # `start`: pairs waiting for a slot, and pairs in the pool nobody joined yet (by interaction id)
        self._waiting: dict[str, Pair] = {}
        self._started: dict[str, Future[Outcome | None]] = {}
        self._feeding = 0  # `start`'s pairs in the pool, joined or not
        # guards the three above; notified as each of those pairs ends. Reentrant: a done callback
        # may run at once, in the thread that holds it
        self._feeder = threading.Condition(threading.RLock())

    @classmethod
    def from_config(cls, config: PersonasimConfig, *, store: InteractionStore | None = None,
                    concurrency: int = 8, spend: SpendSink | None = None, budget_usd: float | None = None) -> Engine:
        """Clients, roles and the configured distractor, built once. With a `spend` sink (a
        pipeline run) every call goes there as it returns and only totals stay in memory."""
        clients = build_clients(config)
        spent = UsageLog(keep=spend is None, sink=spend)
        roles = build_roles(config, clients, configured_distractor(config, clients, spent), spent)
        return cls(config, roles, clients, store=store, concurrency=concurrency, spent=spent, budget_usd=budget_usd)

    def interaction_id(self, pair: Pair) -> str:
        return self.stages.interaction_id(pair)

    # -- stopping -------------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """No new pair starts; pairs in flight go on."""
        self.stopped = self.stopped or reason

    def abort(self) -> None:
        """Pairs in flight are given up (their connections closed) and come back as not done."""
        self.stop("interrupted")
        self._aborted = True
        self.clients.close()

    def spent_usd(self) -> float:
        return self.spent.cost_usd(self.config.pricing)

    def may_start(self) -> bool:
        """Whether new work may start: not stopped, and the budget (if any) not yet spent."""
        if self.budget_usd is not None and self.spent_usd() >= self.budget_usd:
            self.stop("budget")
        return self.stopped is None

    @property
    def aborted(self) -> bool:
        return self._aborted

    # -- one pair -------------------------------------------------------------------------------
    def generate(self, pair: Pair, target_turns: int | None = None, prior: Failure | None = None,
                 replay: Replay | None = None) -> Outcome | None:
        """The pair's interaction (stored, when the engine has a store), or its failure; None when
        the engine was stopped before the pair started, or aborted while it ran. A pair of a batch
        run is `replay`ed: its calls answered from the run's journal, paid for as they came back.

        A transient failure retries the pair from the start, up to `retry.pair_attempts` times; a
        permanent one fails it at once. Every call made on the way is in the record's usage; a
        `prior` failure of the pair (a supplement round) counts its calls and attempts too.
        """
        if not self.may_start():
            return None
        interaction_id = self.interaction_id(pair)
        ledger = Ledger(interaction_id, self.spent if replay is None else None, replay=replay)
        done = 0
        if prior is not None:
            ledger.usage.extend(prior.usage)
            ledger.violations.extend(prior.violations)
            done = prior.attempts
        attempts = done + self.retry.pair_attempts
        for attempt in range(done + 1, attempts + 1):
            stage: Stage = "style_transfer"
            try:
                plan = self.stages.plan(pair, interaction_id, ledger, target_turns)
                stage = "noise"
                first = self.stages.noise(interaction_id, 1, plan.initial_query, ledger)
                stage = "turn_loop"
                interaction = self.stages.converse(plan, first, ledger)
            except LLMCallError as exc:
                if self._aborted:
                    return None
                if exc.permanent or attempt == attempts:
                    log.warning("no interaction for %s: %s", pair.source or pair.persona_id, exc)
                    self.ended.add(failed=True)
                    return Failure(interaction_id, pair.persona_id, pair.query_id, pair.original_query,
                                   pair.source, stage, str(exc), attempt, exc.permanent, tuple(ledger.usage),
                                   tuple(ledger.violations))
                log.warning("pair %s/%s failed (attempt %d of %d): %s", pair.persona_id, pair.query_key,
                            attempt, attempts, exc)
                continue
            if self.store is not None:
                self.store.save(interaction)
            self.ended.add(failed=False)
            return interaction
        raise AssertionError("unreachable: the last attempt returns")

    # -- many pairs -----------------------------------------------------------------------------
    @property
    def pool(self) -> Executor:
        """The run's pair pool: `concurrency` pairs in flight, whatever batch they came in."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="personasim-pair")
        return self._pool

    def start(self, pairs: Sequence[Pair]) -> None:
        """Put `pairs` in flight now, in this order, before anyone asks for their outcomes (a
        command-line run's head start while Prefect's API boots). `run` joins them rather than
        starting them again; `triage` counts them as to generate even once they are stored. Only
        `concurrency` of them are in the pool at a time: the rest wait as pairs, not as futures
        (a queued future costs 2 KB; 100k pairs would hold 200 MB)."""
        with self._feeder:
            for pair in pairs:
                interaction_id = self.interaction_id(pair)
                if interaction_id not in self._started:
                    self._waiting.setdefault(interaction_id, pair)
            self._feed()

    def _feed(self) -> None:
        """Waiting pairs into the pool while it has a free slot for them (the lock held); once stopped, none."""
        if self.stopped is not None:
            self._waiting.clear()
        while self._waiting and self._feeding < self.concurrency:
            interaction_id = next(iter(self._waiting))
            future = self.pool.submit(self.generate, self._waiting.pop(interaction_id))
            self._started[interaction_id] = future
            self._feeding += 1
            future.add_done_callback(self._fed)

    def _fed(self, _: Future[Outcome | None]) -> None:
        with self._feeder:
            self._feeding -= 1
            self._feed()
            self._feeder.notify_all()

    def _join(self, pair: Pair) -> Future[Outcome | None] | None:
        """The pair's future if `start` put it in the pool and nobody joined it yet; a pair still
        waiting is taken back (None: the caller starts it)."""
        with self._feeder:
            if not self._started and not self._waiting:
                return None
            interaction_id = self.interaction_id(pair)
            self._waiting.pop(interaction_id, None)
            return self._started.pop(interaction_id, None)

    def settle(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the pairs `start` put in flight (once stopped, those not
        begun end at once); how many of those nobody joined are done and stored."""
        with self._feeder:
            if self.stopped is not None:
                self._waiting.clear()
            self._feeder.wait_for(lambda: not self._waiting and not self._feeding, timeout)
            futures = list(self._started.values())
        return sum(1 for f in futures if f.done() and not f.cancelled() and f.exception() is None
                   and isinstance(f.result(), Interaction))

    def run(self, pairs: Sequence[Pair], *, pool: Executor | None = None,
            on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """The outcome of every pair that ran, in input order (once stopped, the rest do not start).

        Pairs `start` put in flight are joined, not started again. Pairs that failed for a
        transient reason go again, `retry.supplement_rounds` times, once the others are done. A
        storage failure stops the batch at once (going on would pay for work that cannot be kept).
        """
        rounds, reported = self.retry.supplement_rounds, set()

        def report(index: int, outcome: Outcome, final: bool) -> None:
            if on_outcome is not None and (final or not _may_go_again(outcome)):
                reported.add(index)
                on_outcome(outcome)

        outcomes = self._round([(i, pairs[i]) for i in self.start_order(pairs)], {}, pool, report,
                               final=rounds == 0)
        for round_ in range(1, rounds + 1):
            again = [(i, pairs[i]) for i, o in outcomes.items() if _may_go_again(o)]
            if not again or self.stopped:
                break
            outcomes.update(self._round(again, outcomes, pool, report, final=round_ == rounds))
        for index, outcome in outcomes.items():  # failures held back for a round that did not come
            if index not in reported:
                report(index, outcome, True)
        return [outcomes[i] for i in sorted(outcomes)]

    def _round(self, pairs: list[tuple[int, Pair]], earlier: dict[int, Outcome], pool: Executor | None,
               report: Callable[[int, Outcome, bool], None], *, final: bool) -> dict[int, Outcome]:
        """One pass over `pairs`, reporting each outcome (a transient failure only on the final round)."""
        futures: dict[Future[Outcome | None], int] = {}
        for index, pair in pairs:
            prior = earlier.get(index)
            future = self._join(pair) if prior is None else None
            if future is None:
                future = (pool or self.pool).submit(self.generate, pair, None,
                                                    prior if isinstance(prior, Failure) else None)
            futures[future] = index
        outcomes: dict[int, Outcome] = {}
        try:
            for future in as_completed(futures):
                outcome = future.result()
                if outcome is None:
                    continue
                outcomes[futures[future]] = outcome
                report(futures[future], outcome, final)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return outcomes

    def start_order(self, pairs: Sequence[Pair]) -> list[int]:
        """The indices of `pairs` in the order to start them: the longest target conversations first,
        so a run does not end waiting on one long conversation started last (input order among equals)."""
        turns = [self.stages.target_turns(pair, self.interaction_id(pair)) for pair in pairs]
        return sorted(range(len(pairs)), key=lambda i: -turns[i])

    # -- stored work ----------------------------------------------------------------------------
    def triage(self, pairs: Iterable[Pair], in_dataset: set[str]) -> Triage:
        """Pairs whose interaction is in the dataset are skipped; stored ones are recovered, not
        regenerated, unless this engine started them (`run` joins those); the rest are to generate,
        longest conversations first."""
        stored = set(self.store.ids()) if self.store is not None else set()
        with self._feeder:
            stored -= self._started.keys()
        skipped, recover, todo = [], [], []
        for pair in pairs:
            interaction_id = self.interaction_id(pair)
            if interaction_id in in_dataset:
                skipped.append(interaction_id)
            elif interaction_id in stored:
                recover.append(interaction_id)
            else:
                todo.append(pair)
        return Triage(skipped, recover, [todo[i] for i in self.start_order(todo)])

    def recover(self, interaction_ids: Iterable[str]) -> list[Interaction]:
        if self.store is None:
            return []
        return [self.store.load_interaction(i) for i in interaction_ids]

    def close(self) -> None:
        """Let the pair pool's threads and the clients' connections (and a local model server) go.
        Started pairs nobody joined and not yet begun are dropped (a rerun does them); those begun
        finish and are stored."""
        with self._feeder:
            self._waiting.clear()
            self._started.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.clients.close()


def _may_go_again(outcome: Outcome) -> bool:
    """A failure another round could mend: transient, and not a contract the model broke for good."""
    return isinstance(outcome, Failure) and not outcome.permanent
