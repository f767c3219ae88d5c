"""The token bucket: a burst up to the budget, then tokens at the refill rate."""

import time

from personasim.llm.throttle import Throttle


def test_tokens_per_minute_budget_refills_at_its_rate():
    throttle = Throttle(tokens_per_minute=600)  # 10 tokens a second
    started = time.monotonic()
    with throttle.request(600):
        pass
    assert time.monotonic() - started < 0.1  # the full budget is available at once
    with throttle.request(5):
        pass
    assert 0.4 < time.monotonic() - started < 1.0  # then 5 tokens take about half a second


def test_settle_charges_the_real_usage():
    throttle = Throttle(tokens_per_minute=600)
    with throttle.request(10):
        pass
    throttle.settle(10, 605)  # the call used far more than estimated: the bucket goes 5 tokens into debt
    started = time.monotonic()
    with throttle.request(1):
        pass
    assert time.monotonic() - started > 0.5


def test_an_unlimited_throttle_never_waits():
    throttle = Throttle()
    started = time.monotonic()
    for _ in range(1000):
        with throttle.request(10_000):
            pass
    assert time.monotonic() - started < 0.5
