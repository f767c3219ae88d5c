"""Cached and batch tokens priced at their rates, everywhere a cost is shown."""

from __future__ import annotations

import pytest

from personasim.config import PriceConfig, load_config
from personasim.estimate import cacheable, estimate_run
from personasim.llm.ledger import UsageLog
from personasim.pricing import estimate_cost, tokens_cost
from personasim.records import Pair, Usage

PRICES = {"m": PriceConfig(input_per_1m=2.0, cached_input_per_1m=0.5, output_per_1m=8.0, batch_discount=0.5)}


def test_cached_input_and_batch_calls_are_priced_at_their_rates():
    online = tokens_cost("m", 1_000_000, 1_000_000, PRICES)
    assert online == pytest.approx(10.0)
    cached = tokens_cost("m", 1_000_000, 1_000_000, PRICES, cached_tokens=600_000)
    assert cached == pytest.approx(0.4 * 2.0 + 0.6 * 0.5 + 8.0)
    assert tokens_cost("m", 1_000_000, 1_000_000, PRICES, cached_tokens=600_000, batch=True) == pytest.approx(
        cached / 2)
    # a price without a cached rate charges the full input price: never an understated bill
    plain = {"m": PriceConfig(input_per_1m=2.0, output_per_1m=8.0)}
    assert tokens_cost("m", 1_000_000, 0, plain, cached_tokens=1_000_000) == pytest.approx(2.0)
    assert plain["m"].batch_discount == 0.5


def test_the_usage_log_keeps_batch_and_online_calls_apart_to_price_them():
    log = UsageLog()
    log.add(Usage("assistant", "respond", "m", "openai", 1000, 100, 0.1, cached_tokens=800))
    log.add(Usage("assistant", "respond", "m", "openai", 1000, 100, 0.1, batch=True))
    assert log.by_model()["m"] == {"calls": 2, "input_tokens": 2000, "cached_tokens": 800, "output_tokens": 200}
    expected = (200 * 2.0 + 800 * 0.5 + 100 * 8.0) / 1e6 + (1000 * 2.0 + 100 * 8.0) / 1e6 / 2
    assert log.cost_usd(PRICES) == pytest.approx(expected)
    groups = log.groups()
    assert estimate_cost(groups, PRICES)["total_usd"] == pytest.approx(expected, abs=1e-6)
    assert estimate_cost(groups, PRICES, batch=False)["total_usd"] > expected  # the same calls, all online


def test_the_estimate_gives_online_and_batch_cost_and_the_cached_share():
    config = load_config({"pricing": {"offline-template": {"input_per_1m": 1.0, "cached_input_per_1m": 0.25,
                                                             "output_per_1m": 4.0}},
                          "generation": {"target_turns": 5}})
    long_query = "Explain, step by step, how to plan a kitchen renovation on a budget. " * 60
    pairs = [Pair("p1", {"occupation": "chef"}, long_query, query_id="q1")]
    estimate = estimate_run(pairs, config)
    assert estimate.batch_cost["total_usd"] == pytest.approx(estimate.cost["total_usd"] / 2, rel=1e-3)
    # later turns re-send the conversation: its prefix, over 1,024 tokens, comes from the cache
    assert 0.3 < estimate.cached_share < 1.0
    assert cacheable(1023) == 0 and cacheable(1024) == 1024 and cacheable(1300) == 1280
