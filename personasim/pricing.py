"""USD from token counts and the config's price table (USD per million tokens, per model).

A call's price depends on its model, how many of its input tokens the provider served from its
prompt cache, and whether it went through a batch API; totals are kept apart by model and by
batch, so every sum of calls can be priced exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from personasim.config import PriceConfig


def tokens_cost(model: str, input_tokens: float, output_tokens: float, pricing: Mapping[str, PriceConfig], *,
                cached_tokens: float = 0, batch: bool = False) -> float:
    """What these tokens of `model` cost; 0.0 for a model without a price."""
    price = pricing.get(model)
    if price is None:
        return 0.0
    cached = min(cached_tokens, input_tokens)
    cached_rate = price.input_per_1m if price.cached_input_per_1m is None else price.cached_input_per_1m
    cost = ((input_tokens - cached) * price.input_per_1m + cached * cached_rate
            + output_tokens * price.output_per_1m) / 1e6
    return cost * (1.0 - price.batch_discount) if batch else cost


def group_cost(group: Mapping[str, Any], pricing: Mapping[str, PriceConfig], batch: bool | None = None) -> float:
    """The cost of a group of calls of one model (calls, input, cached and output tokens, batch or
    not); `batch` prices it as if it went online (False) or through a batch API (True)."""
    return tokens_cost(group["model"], group["input_tokens"], group["output_tokens"], pricing,
                       cached_tokens=group.get("cached_tokens") or 0,
                       batch=bool(group.get("batch")) if batch is None else batch)


def estimate_cost(groups: Iterable[Mapping[str, Any]], pricing: Mapping[str, PriceConfig],
                  batch: bool | None = None) -> dict[str, Any]:
    """USD of groups of calls (each of one model) from the price table; models without a price are
    listed, not guessed."""
    total, by_model, unpriced = 0.0, dict[str, float](), set[str]()
    for group in groups:
        model = group["model"]
        if model not in pricing:
            unpriced.add(model)
            continue
        cost = group_cost(group, pricing, batch)
        by_model[model] = by_model.get(model, 0.0) + cost
        total += cost
    return {"total_usd": round(total, 6), "by_model": {m: round(c, 6) for m, c in sorted(by_model.items())},
            "unpriced_models": sorted(unpriced)}
