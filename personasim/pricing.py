"""USD from token counts and the config's price table (USD per million tokens, per model)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from personasim.config import PriceConfig


def tokens_cost(model: str, input_tokens: int, output_tokens: int, pricing: Mapping[str, PriceConfig]) -> float:
    """What these tokens of `model` cost; 0.0 for a model without a price."""
    price = pricing.get(model)
    if price is None:
        return 0.0
    return (input_tokens * price.input_per_1m + output_tokens * price.output_per_1m) / 1e6


def estimate_cost(tokens_by_model: Mapping[str, Mapping[str, int]], pricing: Mapping[str, PriceConfig]
                  ) -> dict[str, Any]:
    """USD from the price table; models without a price are listed, not guessed."""
    total, by_model, unpriced = 0.0, {}, []
    for model, tokens in sorted(tokens_by_model.items()):
        if model not in pricing:
            unpriced.append(model)
            continue
        cost = tokens_cost(model, tokens["input_tokens"], tokens["output_tokens"], pricing)
        by_model[model] = round(cost, 6)
        total += cost
    return {"total_usd": round(total, 6), "by_model": by_model, "unpriced_models": unpriced}
