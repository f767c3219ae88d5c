"""What a run will cost, before anything is paid: calls, tokens and USD per model.

With no data to go on, each pair is modelled from the config: the chance of a rewrite, the
conversation's expected length, the real prompts rendered for the pair (their size in tokens, at
four characters a token) and assumed reply lengths. When the dataset already holds interactions
of the same config, the averages per pair of what they really cost are used instead (calibrated).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from personasim.config import PersonasimConfig
from personasim.dataset import Dataset
from personasim.llm.ledger import TALLY
from personasim.pricing import estimate_cost
from personasim.prompts import Prompts, render
from personasim.records import Pair
from personasim.roles.persona_text import format_persona

# Prompt caching as OpenAI does it (and the estimate assumes): a prefix the provider saw in an earlier
# call is served from its cache once it is 1,024 tokens long, in steps of 128.
CACHE_MIN_TOKENS = 1024
CACHE_STEP = 128

# Reply lengths in tokens assumed before any data: a rewrite is about 1.5 times its query, an answer
# fills a reply budget up to ANSWER_TOKENS, a follow-up is a sentence, the distractor's JSON a bit more.
ANSWER_TOKENS = 250
FOLLOW_UP_TOKENS = 25
JSON_OVERHEAD_TOKENS = 30
SYSTEM_PROMPT_TOKENS = 180  # a formulated system prompt: a paragraph or two


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def cacheable(prefix: float) -> float:
    """The tokens of a repeated prompt prefix a provider serves from its cache."""
    return prefix // CACHE_STEP * CACHE_STEP if prefix >= CACHE_MIN_TOKENS else 0.0


@dataclass
class Estimate:
    pairs: int
    calibrated_from: int = 0  # interactions of the dataset the figures come from; 0: modelled from the config
    formulations: int = 0  # system prompts to write (one formulator call each, before the pairs)
    by_model: dict[str, dict[str, float]] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)  # online, with the expected prompt cache
    batch_cost: dict[str, Any] = field(default_factory=dict)  # the same calls through a batch API

    def add(self, model: str, calls: float, input_tokens: float, output_tokens: float, cached_tokens: float = 0.0
            ) -> None:
        totals = self.by_model.setdefault(model, dict.fromkeys(TALLY, 0.0))
        for key, value in zip(TALLY, (calls, input_tokens, cached_tokens, output_tokens), strict=True):
            totals[key] += value

    def totals(self) -> dict[str, int]:
        return {key: round(sum(t[key] for t in self.by_model.values())) for key in TALLY}

    @property
    def cached_share(self) -> float:
        """The expected share of input tokens served from the provider's prompt cache."""
        totals = self.totals()
        return round(totals["cached_tokens"] / totals["input_tokens"], 4) if totals["input_tokens"] else 0.0

    def priced(self, config: PersonasimConfig) -> Estimate:
        groups = [{"model": m, **{k: round(v) for k, v in t.items()}} for m, t in self.by_model.items()]
        self.cost = estimate_cost(groups, config.pricing, batch=False)
        self.batch_cost = estimate_cost(groups, config.pricing, batch=True)
        return self


def _modelled(pair: Pair, config: PersonasimConfig, estimate: Estimate) -> None:
    spec = config.spec
    gen, models, noise = spec.generation, spec.models, spec.distractor
    persona = format_persona(pair.persona_features)
    query = _tokens(pair.adapted_query or pair.original_query)
    if pair.adapted_query is None:
        system = _tokens(render("rewrite_query", persona=persona))
        estimate.add(models.style_transfer.model, gen.transfer_probability, gen.transfer_probability * (system + query),
                     gen.transfer_probability * 1.5 * query)
        query = round(query * (1 + 0.5 * gen.transfer_probability))
    target = pair.target_turns or gen.target_turns
    turns = target if target is not None else (gen.min_turns + gen.max_turns) / 2
    weight = sum(m.weight for m in models.assistant)
    answer_system = _tokens(pair.system_prompt or render("respond"))
    follow_system = _tokens(render("follow_up", persona=persona, stop_rule=render("follow_up.must_go_on")))
    history = 0.0
    asked = followed = 0.0  # the prompts of the conversation's last answer and last follow-up: their cache
    for turn in range(1, int(round(turns)) + 1):
        user = query if turn == 1 else FOLLOW_UP_TOKENS
        for model in models.assistant:
            share = model.weight / weight
            answer = min(model.max_tokens, ANSWER_TOKENS)
            estimate.add(model.model, share, share * (answer_system + history + user), share * answer,
                         share * cacheable(asked))
        asked = answer_system + history + user
        history += user + min(models.assistant[0].max_tokens, ANSWER_TOKENS)
        if turn < round(turns):
            estimate.add(models.user_simulator.model, 1, follow_system + history, FOLLOW_UP_TOKENS, cacheable(followed))
            followed = follow_system + history
        if noise.enabled and noise.type == "semantic":
            calls = 2 * noise.activation_probability  # intent extraction, then the rewrite
            prompt = _tokens(render("extract_intent")) + _tokens(render("semantic_rewrite", layer="", goal="",
                                                                       strategies="")) + 2 * user
            estimate.add(models.distractor.model, calls, noise.activation_probability * prompt,
                         noise.activation_probability * (2 * JSON_OVERHEAD_TOKENS + user))
        elif noise.enabled:
            paraphrase = noise.activation_probability * noise.rule_based.strategies["paraphrase"].probability
            estimate.add(models.distractor.model, paraphrase, paraphrase * (_tokens(render("paraphrase")) + user),
                         paraphrase * user)
    _judged(pair, config, estimate, round(turns), history)


def _judged(pair: Pair, config: PersonasimConfig, estimate: Estimate, turns: int, conversation: float) -> None:
    """The judge's calls for one pair: a check of each drafted user turn and rewrite (the gate),
    and a score of the conversation per judge (booked apart, as the `judge` stage)."""
    judges, spec = config.spec.models.judges, config.spec
    if not judges:
        return
    persona = format_persona(pair.persona_features)
    if spec.gate.judge:
        checks = (turns - 1) + (spec.generation.transfer_probability if pair.adapted_query is None else 0)
        system = _tokens(render("judge.turn", persona=persona))
        estimate.add(judges[0].model, checks, checks * (system + conversation / 2), checks * JSON_OVERHEAD_TOKENS)
    if config.judging.in_run:
        axes = "\n".join(config.judging.rubric(axis) for axis in config.judging.axes)
        system = _tokens(render("judge.conversation", persona=persona, axes=axes))
        for judge in judges:
            estimate.add(judge.model, 1, system + conversation, len(config.judging.axes) * JSON_OVERHEAD_TOKENS)


def _calibrated(dataset: Dataset, fingerprint: str) -> tuple[int, dict[str, dict[str, float]]]:
    """(interactions measured, per-pair calls and tokens by model) from the dataset's own books."""
    ix = dataset.table("interactions", ["interaction_id", "config_fingerprint"]).to_pylist()
    ids = {r["interaction_id"] for r in ix if r["config_fingerprint"] == fingerprint}
    if not ids:
        return 0, {}
    usage = dataset.table("token_usage", ["interaction_id", "model", "input_tokens", "cached_tokens", "output_tokens",
                                          "outcome"]).to_pylist()
    per_model: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(TALLY, 0.0))
    for row in usage:
        if row["outcome"] == "interaction" and row["interaction_id"] in ids:
            totals = per_model[row["model"]]
            totals["calls"] += 1
            totals["input_tokens"] += row["input_tokens"]
            totals["cached_tokens"] += row["cached_tokens"] or 0
            totals["output_tokens"] += row["output_tokens"]
    return len(ids), {m: {k: v / len(ids) for k, v in t.items()} for m, t in per_model.items()}


def _formulations(personas: Sequence[Mapping[str, str]], config: PersonasimConfig, estimate: Estimate) -> None:
    """One formulator call per persona that needs a system prompt: its template with the persona."""
    template = config.formulation.template
    prompts = Prompts({"formulate_system_prompt": template} if template else None)
    for features in personas:
        prompt = prompts.render("formulate_system_prompt", persona=format_persona(features))
        estimate.add(config.formulator.model, 1, _tokens(prompt) + _tokens(str(dict(features))), SYSTEM_PROMPT_TOKENS)
    estimate.formulations = len(personas)


def estimate_run(pairs: Sequence[Pair], config: PersonasimConfig, dataset: Dataset | None = None,
                 formulate: Sequence[Mapping[str, str]] = ()) -> Estimate:
    """The cost of generating `pairs` under `config` (calibrated from `dataset` when it has
    interactions), and of writing the system prompts of the personas in `formulate` first."""
    estimate = Estimate(len(pairs))
    _formulations(formulate, config, estimate)
    measured, per_pair = _calibrated(dataset, config.fingerprint()) if dataset is not None else (0, {})
    if measured:
        estimate.calibrated_from = measured
        for model, totals in per_pair.items():
            estimate.add(model, *(totals[k] * len(pairs) for k in ("calls", "input_tokens", "output_tokens",
                                                                   "cached_tokens")))
    else:
        for pair in pairs:
            _modelled(pair, config, estimate)
    return estimate.priced(config)

