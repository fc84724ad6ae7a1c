"""`KEY_BUDGETS` parsed: dollars per UTC calendar day or month per key id (`*`: every other key).

Kept apart from `api.budgets` so the settings can validate it without importing the metrics.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

__all__ = ["MAX_BUDGET_USD", "NANO", "Budget", "Period", "parse_budgets", "period_bounds"]

Period = Literal["day", "month"]
NANO = 1_000_000_000  # nano-dollars per dollar
MAX_BUDGET_USD = 1_000_000.0
_ENTRY = re.compile(r"^\s*([^=\s]+)\s*=\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*(day|month)\s*$")


@dataclass(frozen=True, slots=True)
class Budget:
    usd: float
    period: Period

    @property
    def nano(self) -> int:
        return round(self.usd * NANO)


def parse_budgets(text: str) -> dict[str, Budget]:
    """`*=5/day;3f2a9c1d0e7b4a55=100/month` -> {key id or "*": Budget}.

    :raises ValueError: with the offending entry (budgets hold no secrets).
    """
    budgets: dict[str, Budget] = {}
    for entry in re.split(r"[;,]", text):
        if not entry.strip():
            continue
        match = _ENTRY.match(entry)
        if not match:
            raise ValueError(
                f"{entry.strip()!r} is not a budget; write KEY_ID=DOLLARS/day or /month, "
                "`*` for every other key, `;` between entries "
                "(e.g. *=5/day;3f2a9c1d0e7b4a55=100/month)"
            )
        key, amount, period = match.group(1), float(match.group(2)), match.group(3)
        if not 0 < amount <= MAX_BUDGET_USD:
            raise ValueError(f"{entry.strip()!r}: the amount must be > 0 and <= {MAX_BUDGET_USD:g}")
        if key in budgets:
            raise ValueError(f"{key!r} has two budgets")
        budgets[key] = Budget(amount, "day" if period == "day" else "month")
    return budgets


def period_bounds(period: Period, now: datetime) -> tuple[str, datetime]:
    """The period's id and its end (UTC calendar day or month)."""
    if period == "day":
        start = datetime(now.year, now.month, now.day, tzinfo=UTC)
        return f"d{start:%Y-%m-%d}", start + timedelta(days=1)
    days = calendar.monthrange(now.year, now.month)[1]
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    return f"m{start:%Y-%m}", start + timedelta(days=days)
