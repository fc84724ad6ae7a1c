"""Per-API-key rate limiting: slowapi's model, checked without blocking the event loop.

What we keep from slowapi (the library the design names): its configuration and semantics.
`RATE_LIMIT` is parsed by slowapi's `LimitGroup` (so `60/minute`, `100/hour` and
`10/second;1000/day` mean exactly what they mean there); the limits are *application limits*
(slowapi's shared "global" scope: one budget per key across every endpoint); the key function
is the caller's key id; storage keys are `prefix/key/scope` as slowapi builds them; a refusal
raises slowapi's `RateLimitExceeded`; and when the storage fails we fall back to in-memory
limits and probe the storage again with exponential backoff, as its `in_memory_fallback` does.

What we do differently, and why:
- slowapi's `Limiter` calls its storage synchronously, so each Redis round trip would block
  the event loop (slowapi issue #18 and its "Limitations" docs). We call `limits`' asyncio API
  (`limits.aio`) instead, which slowapi is built on, with the same limit items.
- slowapi sends `X-RateLimit-Reset` as an epoch time (issue #130). The README promises seconds
  until reset, and sends the headers on every limited response (not only on decorated routes,
  which also need `request`/`response` parameters, issue #256).
- slowapi's `Limiter` reads `.env` and `RATELIMIT_*` variables on its own; here every option
  comes explicitly from `ServiceSettings`.
- slowapi's checks are synchronous, so its probes come one at a time. Ours run concurrently,
  so the probe back-off grows once per probe *round*: the checks in flight when Redis fails
  count once (else a burst would push the next probe to the 30 s cap, and the instances would
  limit on their own long after Redis is back), and one check per round probes, by being
  checked in Redis while the others use memory. Each check gives Redis at most
  `RATE_LIMIT_STORAGE_TIMEOUT` in all, so a hung Redis cannot stall requests longer.

Strategy (`RATE_LIMIT_STRATEGY`): moving window by default. It admits at most N requests in
*any* window of the period (the 61st request within a minute is refused, whenever the minute
started), where a fixed window admits up to 2N across a window boundary. In Redis its
check-and-record is one Lua script, so several instances sharing a Redis admit exactly N
together. A refused request records nothing, so hammering while limited does not extend the
wait. Cost: one entry per admitted request in the window (60 small entries per key at the
default). `limits`' memory storage inserts each at the head of a list, so a check there costs
more as the window fills: in memory the moving window is ours (`api.moving_window`, the same
answers at a constant cost). `sliding-window-counter` costs the same at any N, in memory and in
Redis (two counters per key; the previous window is weighted by how much of it is still inside
the period, which approximates a moving window and can admit more than N within one period
when the previous window's requests came late in it); `fixed-window` is one counter. Shared
through Redis, each is checked and recorded atomically, so instances count together.

With several limits (`10/second;1000/day`) each is checked in turn, as slowapi does; a request
refused by a later limit has already been counted by the earlier ones. That errs on the strict
side: no limit is ever exceeded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.aio.strategies import (
    RateLimiter as Strategy,
)
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from slowapi.errors import RateLimitExceeded
from slowapi.wrappers import Limit, LimitGroup

from api import metrics
from api.config import ServiceSettings
from api.errors import APIError
from api.moving_window import MemoryMovingWindow

__all__ = [
    "KeyRateLimitExceeded",
    "RateLimitState",
    "RateLimitStoreUnavailable",
    "RateLimiter",
    "parse_limits",
]

log = logging.getLogger("api.ratelimit")

SCOPE = "global"  # slowapi's application-limit scope: one budget across all endpoints
_FIRST_PROBE_INTERVAL = 1.0  # after Redis fails; doubled after each failed probe ...
_MAX_PROBE_INTERVAL = 30.0  # ... up to this

Checker = Strategy | MemoryMovingWindow  # what checks and records a request

_STRATEGIES: dict[str, type[Strategy]] = {
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
}

# A bounded pool, with callers queueing for a turn: an unbounded one opens a connection per
# concurrent request, and a burst of thousands then fails on connect timeouts (measured: 5000
# concurrent checks fell back to memory), while 64 connections serve ~20k checks/s from one
# event loop.
_REDIS_POOL_SIZE = 64
# How long a check may queue for a turn on Redis: past it Redis is answering slower than checks
# arrive, and the instance limits in memory for a while, as if Redis were down.
_TURN_WAIT = 5.0

# RuntimeError: redis-py on uvloop raises "unable to perform operation on <TCPTransport
# closed=True>; the handler is closed" when a pooled connection whose write was cut short by
# the check's timeout is used again while Redis is going away: a dead connection, not a bug.
_STORAGE_FAILURES = (StorageError, ConnectionError, TimeoutError, OSError, RuntimeError)


def _no_key(*_: Any) -> str:  # slowapi wants a key function; we pass the key id ourselves
    return ""


def parse_limits(text: str) -> list[Limit]:
    """slowapi's parsing of a limit string (`;`/`,`-separated), as slowapi application limits."""
    group = LimitGroup(text, _no_key, SCOPE, False, None, None, None, 1, False)
    return list(group)


@dataclass(frozen=True)
class RateLimitState:
    """What the response headers say about the caller's budget."""

    limit: int
    remaining: int
    reset_in: int  # whole seconds until a slot frees up (rounded up)
    exceeded: bool
    description: str  # e.g. "60 per 1 minute"

    def headers(self) -> dict[str, str]:
        headers = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_in),
        }
        if self.exceeded:
            headers["retry-after"] = str(max(1, self.reset_in))
        return headers


class KeyRateLimitExceeded(RateLimitExceeded):
    """slowapi's 429 exception, carrying the budget for the response headers."""

    def __init__(self, limit: Limit, state: RateLimitState) -> None:
        super().__init__(limit)
        self.state = state


class RateLimitStoreUnavailable(APIError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "the rate-limit store is unreachable, so requests cannot be admitted; retry shortly",
            type="service_unavailable",
            code="rate_limit_unavailable",
            headers={"Retry-After": "5"},
        )


class RateLimiter:
    """One per app: checks and records a request against its key's budget."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.limits = parse_limits(settings.rate_limit)
        self.prefix = settings.rate_limit_key_prefix
        self.uses_redis = settings.uses_redis
        self.on_storage_down = settings.rate_limit_storage_down
        self._uri = settings.limiter_storage_uri
        self._timeout = settings.rate_limit_storage_timeout
        self._storage: Storage | None = None
        self._pool: BlockingConnectionPool | None = None
        self._strategy = _STRATEGIES[settings.rate_limit_strategy]
        self._primary: Checker | None = None
        self._fallback: Checker | None = None
        self._fallback_storage: MemoryStorage | None = None
        # Turns on Redis: a check queues here, not in the pool, so the queueing is not counted
        # against its Redis timeout, and a check that queued while Redis went down goes to memory.
        self._turns: asyncio.Semaphore | None = None
        self._dead_since: float | None = None
        # Bumped on every down/up transition: a failure of a check that started before the last
        # transition belongs to a round already counted.
        self._epoch = 0
        self._failed_probes = 0
        self._next_probe = 0.0
        self._probing = False

    # --- lifecycle (inside the running event loop: limits' memory storage needs one) ----------

    async def start(self) -> None:
        options: dict[str, Any] = {}
        if self.uses_redis:
            # limits passes the URI to redis-py without "async+", with "unix://" for sockets.
            plain = self._uri.removeprefix("async+").replace("redis+unix://", "unix://")
            self._pool = BlockingConnectionPool.from_url(
                plain,
                max_connections=_REDIS_POOL_SIZE,
                timeout=self._timeout,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                # one quick retry for a dropped idle connection; a down server fails fast
                retry=Retry(NoBackoff(), 1),
            )
            options = {"implementation": "redispy", "connection_pool": self._pool}
        storage = storage_from_string(self._uri, wrap_exceptions=True, **options)
        if not isinstance(storage, Storage):  # a sync scheme such as plain memory:// or redis://
            raise ValueError(f"{self._uri!r} is not an asyncio rate-limit storage")
        self._storage = storage
        self._primary = self._checker(storage)
        self._turns = asyncio.Semaphore(_REDIS_POOL_SIZE)
        self._fallback_storage = MemoryStorage()
        self._fallback = self._checker(self._fallback_storage)

    def _checker(self, storage: Storage) -> Checker:
        """The strategy over `storage`; a moving window in memory is ours (`api.moving_window`:
        the same answers at a constant cost per check)."""
        if self._strategy is MovingWindowRateLimiter and isinstance(storage, MemoryStorage):
            return MemoryMovingWindow()
        return self._strategy(storage)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()

    # --- the check ----------------------------------------------------------------------------

    async def hit(self, key_id: str) -> RateLimitState:
        """Counts one request for `key_id` and returns its budget.

        :raises KeyRateLimitExceeded: over budget (with the state for the headers).
        :raises RateLimitStoreUnavailable: the store is down and the mode is `reject`.
        """
        assert self._primary is not None and self._turns is not None
        if self._pool is None:  # in-memory storage: nothing to fall back from
            return await self._evaluate(self._primary, key_id)
        if self._dead_since is None:
            epoch = self._epoch
            try:
                async with asyncio.timeout(_TURN_WAIT):
                    await self._turns.acquire()
            except TimeoutError as error:
                self._redis_failed(error, epoch, probe=False)
                return await self._fallback_hit(key_id)
            try:
                if self._dead_since is None:
                    return await self._hit_redis(key_id, probe=False)
            finally:
                self._turns.release()
        if not self._claim_probe():
            return await self._fallback_hit(key_id)
        return await self._hit_redis(key_id, probe=True)

    async def _hit_redis(self, key_id: str, *, probe: bool) -> RateLimitState:
        assert self._primary is not None
        epoch = self._epoch
        try:
            # One deadline for all of the check's calls (and a pool wait): the socket timeout
            # alone allows a retry per call, and two calls per limit.
            async with asyncio.timeout(self._timeout):
                state = await self._evaluate(self._primary, key_id)
        except KeyRateLimitExceeded:
            self._redis_answered(probe)
            raise
        except _STORAGE_FAILURES as error:
            self._redis_failed(error, epoch, probe)
            return await self._fallback_hit(key_id)
        except BaseException:
            if probe:  # cancelled: the round stays open for the next caller
                self._probing = False
            raise
        self._redis_answered(probe)
        return state

    async def _fallback_hit(self, key_id: str) -> RateLimitState:
        if self.on_storage_down == "reject":
            metrics.RATE_LIMIT_STORAGE_DOWN.labels(mode="reject").inc()
            raise RateLimitStoreUnavailable()
        metrics.RATE_LIMIT_STORAGE_DOWN.labels(mode="memory").inc()
        assert self._fallback is not None
        return await self._evaluate(self._fallback, key_id)

    async def _evaluate(self, limiter: Checker, key_id: str) -> RateLimitState:
        identifiers = (self.prefix, key_id, SCOPE)
        tightest: RateLimitState | None = None
        for lim in self.limits:
            item: RateLimitItem = lim.limit
            admitted = await limiter.hit(item, *identifiers)
            stats = await limiter.get_window_stats(item, *identifiers)
            state = RateLimitState(
                limit=item.amount,
                remaining=max(0, stats.remaining),
                reset_in=max(0, math.ceil(stats.reset_time - time.time())),
                exceeded=not admitted,
                description=str(item),
            )
            if not admitted:
                raise KeyRateLimitExceeded(lim, state)
            if tightest is None or (state.remaining, -state.reset_in) < (
                tightest.remaining,
                -tightest.reset_in,
            ):
                tightest = state
        assert tightest is not None  # parse_limits never returns an empty list for valid settings
        return tightest

    # --- storage health -----------------------------------------------------------------------

    def _claim_probe(self) -> bool:
        """True for one caller per probe round, once its time has come."""
        if self._probing or time.monotonic() < self._next_probe:
            return False
        self._probing = True
        return True

    def _redis_failed(self, error: BaseException, epoch: int, probe: bool) -> None:
        now = time.monotonic()
        if probe:
            self._probing = False
            self._failed_probes += 1
            interval = _FIRST_PROBE_INTERVAL * 2.0 ** min(self._failed_probes, 5)
            self._next_probe = now + min(_MAX_PROBE_INTERVAL, interval)
            metrics.RATE_LIMIT_STORAGE_PROBES.labels(outcome="failed").inc()
        elif self._dead_since is None and epoch == self._epoch:
            self._epoch += 1
            self._dead_since = now
            self._failed_probes = 0
            self._next_probe = now + _FIRST_PROBE_INTERVAL
            log.warning(
                "rate-limit store unreachable (%s); %s",
                type(error).__name__,
                "limiting in memory, per instance, until it is back"
                if self.on_storage_down == "memory"
                else "refusing requests with 503 until it is back",
            )
        # else: a check in flight when Redis failed, whose round is already counted

    def _redis_answered(self, probe: bool) -> None:
        # Only a probe ends an outage: a check that started before it may answer late.
        if probe:
            assert self._dead_since is not None
            down_for = time.monotonic() - self._dead_since
            self._probing = False
            self._epoch += 1
            self._dead_since = None
            metrics.RATE_LIMIT_STORAGE_PROBES.labels(outcome="ok").inc()
            log.warning(
                "rate-limit store reachable again after %.1f s; shared limits resumed", down_for
            )

    async def check(self) -> bool:
        """True when the primary store answers (always for memory)."""
        if self._storage is None:
            return False
        try:
            async with asyncio.timeout(self._timeout):
                healthy = bool(await self._storage.check())
        except _STORAGE_FAILURES:
            return False
        if healthy and self._dead_since is not None:
            # /readyz just reached the store: let the next request probe it now rather than
            # at the end of the back-off, so readiness and limiting agree sooner.
            self._next_probe = 0.0
        return healthy

    @property
    def degraded(self) -> bool:
        """The shared store is down and the in-memory fallback is in use."""
        return self._dead_since is not None
