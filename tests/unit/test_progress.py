"""Progress counts calls, tokens and cost as each call returns, and pairs as they end."""

from types import SimpleNamespace

from personasim.config import PriceConfig
from personasim.engine.engine import PairTally
from personasim.llm.ledger import Ledger, UsageLog
from personasim.progress import RunProgress
from personasim.records import Usage


def test_calls_count_the_moment_they_return_before_any_pair_ends():
    engine = SimpleNamespace(spent=UsageLog(), ended=PairTally())
    progress = RunProgress(3, {"m": PriceConfig(input_per_1m=1.0, output_per_1m=2.0)}, live=engine)
    ledger = Ledger("ix-1", engine.spent)
    ledger.add(Usage("assistant", "respond", "m", "openai", 1000, 500, 0.1, "ix-1"))
    ledger.add(Usage("user_simulator", "follow_up", "m", "openai", 200, 20, 0.1, "ix-1"))
    live = progress.snapshot()
    assert (live.calls, live.input_tokens, live.output_tokens, live.finished) == (2, 1200, 520, 0)
    assert live.cost_usd == round((1200 * 1.0 + 520 * 2.0) / 1e6, 6)
    assert progress.books().calls == 0  # the summary counts the calls of pairs that ended
    engine.ended.add(failed=False)
    assert progress.snapshot().done == 1 and progress.books().done == 0
