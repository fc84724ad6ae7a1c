"""The moving-window rate limit in this process's memory, at a constant cost per check.

Used when limits are kept in memory (no Redis, or Redis down with RATE_LIMIT_STORAGE_DOWN=memory)
and the strategy is the default moving window. It answers exactly as `limits`'
`MovingWindowRateLimiter` over its `MemoryStorage` (a request is refused when N requests were
admitted within the period, a refused one records nothing, the window starts at its oldest
entry), and has the same two methods, so `api.ratelimit` calls either the same way.

Written here because `limits`' memory storage inserts every admitted request at the head of a
list and trims the list by copying it in a background task run through a thread: a check costs
more as the window fills. With a limit far above the load that was about 6 % of a request's
CPU and, at 700 requests a second, 42,000 entry objects (~6 MB) held for the minute. Here each
key keeps a deque of admission times, oldest first: a check appends one and drops the expired
ones from the left. Keys idle for a whole period are dropped by a sweep once a minute.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from limits import RateLimitItem
from limits.util import WindowStats

__all__ = ["MemoryMovingWindow"]

_SWEEP_EVERY = 60.0  # seconds between sweeps of idle keys


class MemoryMovingWindow:
    """Per key (limit and identifiers), the times of the requests admitted within the period."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, deque[float]]] = {}  # key -> (period s, times)
        self._next_sweep = clock() + _SWEEP_EVERY

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        """Records `cost` requests now, unless that would exceed the limit (then nothing)."""
        if cost > item.amount:
            return False
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        window = self._window(item, identifiers, now)
        if len(window) + cost > item.amount:
            return False
        window.extend([now] * cost)
        return True

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        """When the window resets (its oldest entry leaves it) and what is left in it."""
        now = self._clock()
        window = self._window(item, identifiers, now)
        # As limits counts here: an entry exactly a period old is out (a check still counts it).
        cutoff = now - item.get_expiry()
        out = 0
        while out < len(window) and window[out] <= cutoff:
            out += 1
        start = window[out] if out < len(window) else (window[0] if window else now)
        return WindowStats(start + item.get_expiry(), item.amount - (len(window) - out))

    def _window(
        self, item: RateLimitItem, identifiers: tuple[str, ...], now: float
    ) -> deque[float]:
        key = item.key_for(*identifiers)
        period = item.get_expiry()
        entry = self._windows.get(key)
        if entry is None:
            window: deque[float] = deque()
            self._windows[key] = (period, window)
            return window
        window = entry[1]
        cutoff = now - period
        while window and window[0] < cutoff:  # an entry exactly `period` old still counts
            window.popleft()
        return window

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + _SWEEP_EVERY
        idle = [
            key
            for key, (period, times) in self._windows.items()
            if not times or times[-1] < now - period
        ]
        for key in idle:
            del self._windows[key]

    def __len__(self) -> int:
        """Keys held (for tests)."""
        return len(self._windows)
