"""The in-memory moving window (`api.moving_window`) answers exactly as `limits`' own
(`MovingWindowRateLimiter` over its `MemoryStorage`), request by request, on one clock."""

from __future__ import annotations

import random

import limits.aio.storage.memory as limits_memory
import pytest
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from api.moving_window import MemoryMovingWindow


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def time(self) -> float:
        return self.now


async def test_it_answers_as_limits_does_request_by_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(limits_memory, "time", clock)  # limits reads time.time() there
    ours = MemoryMovingWindow(clock=clock.time)
    theirs = MovingWindowRateLimiter(MemoryStorage())
    rng = random.Random(20261130)
    items = [parse("5/second"), parse("20/minute"), parse("3/hour")]
    refused = 0
    for step in range(4000):
        clock.now += rng.choice([0.0, 0.0, 0.001, 0.05, 0.2, 0.5, 1.0, 3.0, 61.0])
        item, who = rng.choice(items), rng.choice(["key-a", "key-b"])
        admitted = await ours.hit(item, "prefix", who)
        assert admitted == await theirs.hit(item, "prefix", who), step
        refused += not admitted
        mine = await ours.get_window_stats(item, "prefix", who)
        theirs_stats = await theirs.get_window_stats(item, "prefix", who)
        assert mine.remaining == theirs_stats.remaining, step
        if theirs_stats.remaining < item.amount:  # an empty window's reset is "now" for both
            assert mine.reset_time == pytest.approx(theirs_stats.reset_time), step
    assert 500 < refused < 3500  # both answers were exercised


async def test_the_window_slides_and_an_entry_exactly_a_period_old_still_counts() -> None:
    clock = FakeClock()
    window = MemoryMovingWindow(clock=clock.time)
    limit = parse("2/minute")

    assert await window.hit(limit, "k")
    clock.now += 30
    assert await window.hit(limit, "k")
    clock.now += 30  # the first is exactly 60 s old: a check still counts it (as limits does)
    assert not await window.hit(limit, "k")
    stats = await window.get_window_stats(limit, "k")  # ... and its stats do not
    assert (stats.remaining, stats.reset_time) == (1, clock.now + 30)
    clock.now += 0.001  # now it has left the window
    assert await window.hit(limit, "k")


async def test_idle_keys_are_dropped_by_the_sweep() -> None:
    clock = FakeClock()
    window = MemoryMovingWindow(clock=clock.time)
    per_second = parse("10/second")
    for key in range(100):
        assert await window.hit(per_second, str(key))
    assert len(window) == 100

    clock.now += 61  # past the sweep interval; every key idle for more than its period
    assert await window.hit(per_second, "fresh")

    assert len(window) == 1
