"""What model calls cost: a price table per provider and model, in US dollars per million
tokens, each price with the date it was taken from the provider's list.

The built-in providers' default models have prices here; plugins.toml's `[prices]` adds or
overrides any (`[prices."openai/gpt-4.1-mini"] input = 0.4, output = 1.6, date = "2025-04-14"`).
A model matches the longest key that prefixes it, so the dated snapshot an upstream reports
(`gpt-4.1-mini-2025-04-14`) has its alias's price. A model without a price costs *unknown*
(`None`), never zero: a report of $0 for an unpriced model would be a lie.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent_core import Usage

__all__ = ["BUILTIN_PRICES", "ModelPrice", "PriceTable", "trace_cost"]


class ModelPrice(BaseModel):
    """One model's list price."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, le=10_000, description="US dollars per million prompt tokens")
    output: float = Field(ge=0, le=10_000, description="US dollars per million completion tokens")
    date: dt.date = Field(description="when the price was read from the provider's price list")

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.input + usage.completion_tokens * self.output) / 1e6


# The built-in providers' default models, at their list prices on the date given.
BUILTIN_PRICES: Mapping[str, ModelPrice] = {
    "openai/gpt-4.1-mini": ModelPrice(input=0.40, output=1.60, date=dt.date(2025, 4, 14)),
    "anthropic/claude-sonnet-4-6": ModelPrice(input=3.00, output=15.00, date=dt.date(2025, 9, 29)),
    "echo/echo-1": ModelPrice(input=0.0, output=0.0, date=dt.date(2025, 1, 1)),  # offline, free
}


@dataclass(frozen=True, eq=False)  # hashed by identity: lookups are cached per table
class PriceTable:
    prices: Mapping[str, ModelPrice]

    @classmethod
    def with_builtins(cls, configured: Mapping[str, ModelPrice]) -> PriceTable:
        return cls({**BUILTIN_PRICES, **configured})

    def price(self, provider: str | None, model: str | None) -> ModelPrice | None:
        """The price of `provider/model`: the longest key that prefixes it, else `None`."""
        if not provider or not model:
            return None
        return self._lookup(f"{provider}/{model}")

    @lru_cache(maxsize=1024)  # noqa: B019 (one table per configuration, kept for its life)
    def _lookup(self, name: str) -> ModelPrice | None:
        best: tuple[int, ModelPrice] | None = None
        for key, price in self.prices.items():
            if name.startswith(key) and (best is None or len(key) > best[0]):
                best = (len(key), price)
        return best[1] if best else None

    def cost(self, provider: str | None, model: str | None, usage: Usage) -> float | None:
        """What one call cost; `None` when its model has no price (and it spent tokens)."""
        if usage.total_tokens == 0:
            return 0.0
        price = self.price(provider, model)
        return price.cost(usage) if price is not None else None


def trace_cost(trace: Sequence[Mapping[str, Any]] | None) -> float | None:
    """A task's cost from its trace steps' `cost_usd` (None when any is unknown, or there is
    no trace)."""
    if trace is None:
        return None
    costs = [step.get("cost_usd") for step in trace]
    if any(cost is None for cost in costs):
        return None
    return round(sum(float(cost) for cost in costs if cost is not None), 8)
