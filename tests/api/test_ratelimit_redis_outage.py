"""Shared rate limits through a Redis outage: private redis-server processes killed, hung
(SIGSTOP) and brought back, with many checks in flight.

The probe back-off grows once per probe round, whatever the number of checks failing at once;
one check per round probes; a hung Redis costs a check at most RATE_LIMIT_STORAGE_TIMEOUT; and
once Redis is back, instances sharing it admit exactly the limit together again, within the
probe interval that docs/api.md documents.

Timing asserts are upper bounds with a margin for a loaded machine (the bugs they catch cost
seconds to 30 s), or lower bounds, which load can only make truer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
from prometheus_client import REGISTRY

from api.ratelimit import KeyRateLimitExceeded, RateLimiter
from tests.api.conftest import (
    KEY_A,
    KEY_B,
    Server,
    headers,
    server_env,
    service_settings,
    unique_prefix,
)
from tests.api.test_ratelimit_redis import PrivateRedis

Outage = Literal["killed", "hung"]

STORAGE_TIMEOUT = 0.5  # RATE_LIMIT_STORAGE_TIMEOUT's default
# For the hung-Redis test: long enough that a check spending the timeout twice (once per call
# and once more on redis-py's retry) stands out from the margin.
HUNG_TIMEOUT = 1.5
MARGIN = 1.0  # for scheduling delays on a loaded machine
LOADED_TIMEOUT = 2.0  # a storage timeout no CPU starvation reaches
IN_FLIGHT = 50  # checks in flight when Redis goes away
LIMIT = 20
# Shared limits resume at the first probe, 1 s after the failure; if the restart itself took
# longer, at the second, 2 s later. With margin: 6 s (before the fix: 30 s).
RESUME_BOUND = 6.0
GIVE_UP = 15.0  # polling stops here, so a regression fails in seconds, not minutes


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _probes(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "reasoning_agent_rate_limit_storage_probes_total", {"outcome": outcome}
    )
    return value or 0.0


@contextlib.asynccontextmanager
async def _limiters(
    tmp_path: Path, url: str, count: int, timeout: float = STORAGE_TIMEOUT
) -> AsyncIterator[list[RateLimiter]]:
    """`count` limiters on one Redis and one key prefix: instances of one deployment."""
    settings = service_settings(
        tmp_path,
        rate_limit=f"{LIMIT}/minute",
        redis_url=url,
        rate_limit_key_prefix=unique_prefix(),
        rate_limit_storage_timeout=timeout,
    )
    limiters = [RateLimiter(settings) for _ in range(count)]
    try:
        for limiter in limiters:
            await limiter.start()
            await _check(limiter, "warm-up")  # open a connection, load the script
        yield limiters
    finally:
        for limiter in limiters:
            await limiter.aclose()


async def _check(limiter: RateLimiter, key: str) -> bool:
    """One check through the real limiter: admitted or not."""
    try:
        await limiter.hit(key)
    except KeyRateLimitExceeded:
        return False
    return True


async def _timed_check(limiter: RateLimiter, key: str) -> float:
    started = time.monotonic()
    await _check(limiter, key)
    return time.monotonic() - started


async def _outage_with_checks_in_flight(
    redis_server: PrivateRedis, outage: Outage, limiters: list[RateLimiter]
) -> None:
    """Redis goes away with IN_FLIGHT checks waiting on it, and comes back."""
    redis_server.hang()  # from here every check sent to Redis waits
    in_flight = [
        asyncio.create_task(_check(limiters[i % len(limiters)], "in-flight"))
        for i in range(IN_FLIGHT)
    ]
    if outage == "killed":
        await asyncio.sleep(0.2)  # the checks are sent (or time out: one round either way)
        redis_server.stop()
        await asyncio.gather(*in_flight)
        redis_server.start()  # empty: the counts were lost with the process
    else:
        await asyncio.gather(*in_flight)  # each times out
        redis_server.wake()


@pytest.mark.parametrize("outage", ["killed", "hung"])
async def test_checks_in_flight_count_once_and_shared_limits_resume_one_interval_later(
    tmp_path: Path, private_redis: PrivateRedis, outage: Outage
) -> None:
    failed_before, ok_before = _probes("failed"), _probes("ok")
    # A roomier timeout than the default: on a loaded CI machine a 0.5 s check of the freshly
    # restarted Redis can time out, which is a new (real) outage, not what this test measures.
    async with _limiters(tmp_path, private_redis.url, 2, LOADED_TIMEOUT) as limiters:
        await _outage_with_checks_in_flight(private_redis, outage, limiters)
        degraded = [limiter.degraded for limiter in limiters]
        back = time.monotonic()
        # Traffic on both instances, 10 concurrent checks each: each check may be a probe.
        while any(limiter.degraded for limiter in limiters) and time.monotonic() - back < GIVE_UP:
            await asyncio.gather(*(_check(lim, "poll") for lim in limiters for _ in range(10)))
            await asyncio.sleep(0.1)
        resumed_after = time.monotonic() - back

        # Shared again: together they admit exactly the limit of a fresh key.
        admitted = await asyncio.gather(
            *(_check(limiters[i % 2], "after") for i in range(3 * LIMIT))
        )

    assert degraded == [True, True]
    assert resumed_after < RESUME_BOUND
    assert sum(admitted) == LIMIT
    # One successful probe per instance; a failed one only if the restart outlasted a round.
    assert _probes("ok") - ok_before == 2
    assert _probes("failed") - failed_before <= 2


async def test_a_hung_redis_stalls_no_check_beyond_the_timeout_and_probes_once_per_round(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    failed_before = _probes("failed")
    async with _limiters(tmp_path, private_redis.url, 1, HUNG_TIMEOUT) as (limiter,):
        private_redis.hang()
        # More checks than connections: the ones queued behind the hung ones must not wait
        # for their turn and then for Redis too.
        first_wave = await asyncio.gather(*(_timed_check(limiter, "load") for _ in range(200)))
        failed_at = time.monotonic()  # the store was marked down at or before this

        # Then steady traffic, 10 concurrent checks a round, until two probes have failed.
        slowest = 0.0
        probes_per_round: list[float] = []
        failures: list[float] = []  # when each failed probe was seen
        while len(failures) < 2 and time.monotonic() - failed_at < GIVE_UP:
            before = _probes("failed") - failed_before
            slowest = max(
                slowest, *await asyncio.gather(*(_timed_check(limiter, "load") for _ in range(10)))
            )
            seen = _probes("failed") - failed_before
            probes_per_round.append(seen - before)
            failures += [time.monotonic()] * int(seen - before)
            await asyncio.sleep(0.05)
        still_degraded = limiter.degraded

    assert max(first_wave) < HUNG_TIMEOUT + MARGIN  # before the fix: 2 timeouts, or 4 waves
    assert slowest < HUNG_TIMEOUT + MARGIN
    assert still_degraded
    assert max(probes_per_round) == 1  # never two callers probing at once
    assert len(failures) == 2
    # The first probe 1 s after the failure (and takes the timeout to fail) ...
    assert failures[0] - failed_at < 1.0 + HUNG_TIMEOUT + MARGIN
    # ... the next one 2 s after that (and as long to fail): the back-off doubled once, for
    # one failed probe. Seen at the end of a round, hence a little slack in the lower bound.
    assert 2.0 + HUNG_TIMEOUT - 0.3 < failures[1] - failures[0] < 2.0 + HUNG_TIMEOUT + MARGIN


async def test_checks_queued_longer_than_the_turn_wait_are_limited_in_memory(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    # A timeout far longer than the turn wait (api.ratelimit._TURN_WAIT, 5 s): the 64 checks
    # holding a turn wait on the hung Redis, and the 36 queued behind them must not wait with
    # them.
    turn_wait, timeout = 5.0, 30.0
    async with _limiters(tmp_path, private_redis.url, 1, timeout) as (limiter,):
        private_redis.hang()
        checks = [asyncio.create_task(_timed_check(limiter, "load")) for _ in range(100)]
        done, _ = await asyncio.wait(checks, timeout=turn_wait + 2 * MARGIN)
        degraded = limiter.degraded
        private_redis.stop()  # the checks holding a turn fail now, and fall back
        await asyncio.gather(*checks)

    assert len(done) == 36
    assert all(turn_wait - 0.1 < task.result() < turn_wait + 2 * MARGIN for task in done)
    assert degraded  # Redis slower than the checks arrive: memory, and probes, meanwhile


# --- two real servers ---------------------------------------------------------------------------


async def _requests(
    urls: list[str], key: str, total: int, meanwhile: Callable[[], None] | None = None
) -> tuple[Counter[int], float]:
    """`total` concurrent requests for `key` spread over the servers; `meanwhile` runs while
    they are in flight. Returns the statuses and the slowest request's time."""

    async def one(http: httpx.AsyncClient, url: str) -> tuple[int, float]:
        started = time.monotonic()
        response = await http.get(f"{url}/providers", headers=headers(key))
        return response.status_code, time.monotonic() - started

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as http:
        tasks = [asyncio.create_task(one(http, urls[i % len(urls)])) for i in range(total)]
        if meanwhile is not None:
            await asyncio.sleep(0.2)
            meanwhile()
        results = await asyncio.gather(*tasks)
    return Counter(status for status, _ in results), max(seconds for _, seconds in results)


def _logged(server: Server, text: str) -> bool:
    return text in server.output()


@pytest.mark.parametrize("outage", ["killed", "hung"])
def test_two_servers_share_the_limit_again_soon_after_redis_returns(
    serve: Callable[..., Server], tmp_path: Path, private_redis: PrivateRedis, outage: Outage
) -> None:
    env = server_env(
        tmp_path,
        RATE_LIMIT=f"{LIMIT}/minute",
        REDIS_URL=private_redis.url,
        RATE_LIMIT_KEY_PREFIX=unique_prefix(),
    )
    servers = [serve(env), serve(env)]
    urls = [server.url for server in servers]
    statuses, _ = asyncio.run(_requests(urls, KEY_B, 2))  # both on Redis, connected
    assert statuses == Counter({200: 2})

    private_redis.hang()
    kill = private_redis.stop if outage == "killed" else None
    during, slowest = asyncio.run(_requests(urls, KEY_B, IN_FLIGHT, meanwhile=kill))
    # Restarted only now: a check retrying against a Redis already back would never fail.
    went_down = [_logged(server, "rate-limit store unreachable") for server in servers]
    if outage == "killed":
        private_redis.start()
    else:
        private_redis.wake()
    returned = time.monotonic()
    while (
        not all(_logged(server, "shared limits resumed") for server in servers)
        and time.monotonic() - returned < GIVE_UP
    ):
        asyncio.run(_requests(urls, KEY_B, 4))  # traffic, which the probes ride on
        time.sleep(0.1)
    resumed_after = time.monotonic() - returned

    after, _ = asyncio.run(_requests(urls, KEY_A, 3 * LIMIT))

    # During the outage each server limits on its own in memory: never unlimited, never 5xx.
    assert went_down == [True, True]
    assert set(during) <= {200, 429}
    assert slowest < STORAGE_TIMEOUT + 2 * MARGIN  # HTTP on top of the check
    assert resumed_after < RESUME_BOUND, [server.output()[-3000:] for server in servers]
    assert after == Counter({200: LIMIT, 429: 2 * LIMIT})


async def test_a_readiness_check_that_reaches_redis_brings_the_next_request_back_at_once(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    async with _limiters(tmp_path, private_redis.url, 1) as (limiter,):
        private_redis.stop()
        await _check(limiter, "k")  # fails over to memory; the first probe is 1 s away
        assert limiter.degraded
        await asyncio.sleep(1.1)
        await _check(limiter, "k")  # the probe fails: the next one is 2 s away
        assert limiter.degraded
        private_redis.start()
        assert await limiter.check()  # what /readyz calls
        await _check(limiter, "k")  # probes now, not 2 s later
        assert not limiter.degraded
