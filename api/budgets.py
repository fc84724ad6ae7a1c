"""Per-key spend budgets: dollars per UTC day or month per key id, shared across instances.

`KEY_BUDGETS="*=5/day;3f2a9c1d0e7b4a55=100/month"` gives the key id `3f2a9c1d0e7b4a55` $100 a
calendar month and every other key $5 a calendar day (UTC). A key id is the short HMAC the
history records (`key_id` in `GET /query`); the key itself is never needed or stored.

The mechanism is reservation, then reconciliation:

1. Before a task runs, `reserve` takes R = min(the task's `max_cost_usd`, or
   `BUDGET_RESERVATION_USD`; what is left) in one atomic step: `spent + reserved + R <= budget`.
   If less than `BUDGET_MIN_RESERVATION_USD` is left (and the task wanted more), nothing is
   reserved and the task is refused (402 `budget_exhausted`).
2. The task runs with `max_cost_usd = R`, which the engine enforces (it reserves each batch's
   worst case and ends with its best answer when nothing more fits), so it spends at most R
   plus one call's estimate error.
3. When the task ends, however it ends (answer, error, cancellation), `settle` releases R and
   adds what the task actually cost to `spent`.

So concurrent requests can never hold more than the budget between them, on one instance or
many: in Redis the check-and-reserve is one Lua script. Each reservation carries an expiry
(`BUDGET_RESERVATION_TTL`): an instance that crashed mid-task cannot settle, and its reservation
stops counting once expired (the spend of the crashed task is then not counted; at most R per
task in flight at the crash).

Amounts are kept as integer nano-dollars, so sums are exact in Redis and in Lua.

When Redis is unreachable: `BUDGET_STORAGE_DOWN=reject` (the default) refuses budgeted keys'
tasks with 503 `budget_unavailable`; `memory` keeps a ledger per instance (each instance then
allows the whole budget on its own until Redis is back). Never unlimited. Keys without a budget
never touch any of this.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from api import metrics
from api.budget_table import NANO, Budget, parse_budgets, period_bounds
from api.config import ServiceSettings
from api.errors import APIError

__all__ = [
    "CURRENT_BUDGET",
    "Budget",
    "BudgetExhausted",
    "BudgetState",
    "BudgetUnavailable",
    "Ledger",
    "Reservation",
    "UnpricedForBudget",
    "parse_budgets",
]

log = logging.getLogger("api.budgets")

_REDIS_BACKOFF = 2.0  # seconds Redis is not tried again after it failed


@dataclass(slots=True)
class BudgetState:
    """What `x-budget-remaining` says: dollars left in the period, after reservations. Mutable:
    admission sets it, the pipeline updates it after reserving and settling."""

    remaining_nano: int

    def headers(self) -> dict[str, str]:
        return {"x-budget-remaining": f"{max(0, self.remaining_nano) / NANO:.6f}"}


CURRENT_BUDGET: contextvars.ContextVar[BudgetState | None] = contextvars.ContextVar(
    "current_budget", default=None
)
"""The request's budget state (set at admission for a budgeted key), for the pipeline to update."""


@dataclass(slots=True)
class Reservation:
    key_id: str
    store_key: str  # the ledger entry: prefix, key id and period
    id: str
    usd: float  # R: the task runs with max_cost_usd = R
    in_redis: bool
    budget_nano: int
    key_ttl: int  # seconds the ledger entry lives (its period, plus a day)
    state: BudgetState | None = None
    started: bool = False  # a task runs within it (and settles it when it ends)
    settled: bool = False


class BudgetExhausted(APIError):
    def __init__(self, budget: Budget, resets: datetime, state: BudgetState) -> None:
        super().__init__(
            402,
            f"this key's spend budget (${budget.usd:g} per {budget.period}) is used up or "
            f"fully reserved by tasks in flight; it resets at {resets.isoformat()}",
            type="insufficient_quota",
            code="budget_exhausted",
            headers=state.headers(),
        )


class BudgetUnavailable(APIError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "the budget store is unreachable, so this key's spend cannot be checked; retry shortly",
            type="service_unavailable",
            code="budget_unavailable",
            headers={"Retry-After": "5"},
        )


class UnpricedForBudget(APIError):
    def __init__(self) -> None:
        super().__init__(
            400,
            "this key has a spend budget, and the model's price is unknown, so the task's cost "
            "could not be bounded: add its price to plugins.toml "
            '([prices."provider/model"] input = ..., output = ..., date = ...)',
            type="invalid_request_error",
            code="unknown_price",
        )


# KEYS[1]: the ledger hash (spent, reserved, r:<id> = amount); KEYS[2]: the expiry zset.
# ARGV: budget, wanted, minimum, id, now (ms), expires (ms), key ttl (s). Nano-dollars.
# Returns {granted, remaining after}. Numbers go back to Redis through %d: redis.call would
# write a Lua number as 1e+15, which HINCRBY refuses.
_RESERVE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
for _, rid in ipairs(expired) do
  local held = redis.call('HGET', KEYS[1], 'r:' .. rid)
  if held then
    redis.call('HINCRBY', KEYS[1], 'reserved', string.format('%d', -tonumber(held)))
    redis.call('HDEL', KEYS[1], 'r:' .. rid)
  end
  redis.call('ZREM', KEYS[2], rid)
end
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local left = tonumber(ARGV[1]) - spent - reserved
local wanted = tonumber(ARGV[2])
local grant = math.min(wanted, left)
if grant <= 0 or grant < math.min(wanted, tonumber(ARGV[3])) then
  return {0, string.format('%d', left)}
end
redis.call('HINCRBY', KEYS[1], 'reserved', string.format('%d', grant))
redis.call('HSET', KEYS[1], 'r:' .. ARGV[4], string.format('%d', grant))
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[7])
return {string.format('%d', grant), string.format('%d', left - grant)}
"""

# ARGV: id, spent (nano), budget, key ttl (s). Returns the remaining after settling.
_SETTLE = """
local held = redis.call('HGET', KEYS[1], 'r:' .. ARGV[1])
if held then
  redis.call('HINCRBY', KEYS[1], 'reserved', string.format('%d', -tonumber(held)))
  redis.call('HDEL', KEYS[1], 'r:' .. ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if tonumber(ARGV[2]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
return string.format('%d', tonumber(ARGV[3]) - spent - reserved)
"""

_PEEK = """
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
return string.format('%d', tonumber(ARGV[1]) - spent - reserved)
"""


@dataclass(slots=True)
class _MemoryEntry:
    spent: int = 0
    held: dict[str, tuple[int, float]] = field(default_factory=dict)  # id -> (amount, expires)

    def reserved(self, now: float) -> int:
        for rid in [rid for rid, (_, expires) in self.held.items() if expires <= now]:
            del self.held[rid]
        return sum(amount for amount, _ in self.held.values())


_STORAGE_FAILURES = (RedisError, ConnectionError, TimeoutError, OSError)


class Ledger:
    """One per app: the budgets, and where their spend is kept (Redis, or memory)."""

    def __init__(
        self,
        budgets: Mapping[str, Budget],
        *,
        redis_url: str | None,
        prefix: str,
        default_reservation_usd: float,
        min_reservation_usd: float,
        reservation_ttl: float,
        on_storage_down: Literal["memory", "reject"],
        timeout: float,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.budgets = dict(budgets)
        self.default = self.budgets.pop("*", None)
        self.prefix = prefix
        self.default_reservation_usd = default_reservation_usd
        self.min_reservation_usd = min_reservation_usd
        self.reservation_ttl = reservation_ttl
        self.on_storage_down = on_storage_down
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._redis_url = redis_url
        self._timeout = timeout
        self._redis: Redis | None = None
        self._memory: dict[str, _MemoryEntry] = {}
        self._down_until = 0.0

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Ledger:
        """The ledger of `KEY_BUDGETS`, in the rate limiter's Redis when it has one."""
        uri = settings.limiter_storage_uri
        redis_url = None
        if settings.uses_redis:
            redis_url = uri.removeprefix("async+").replace("redis+unix://", "unix://")
        return cls(
            parse_budgets(settings.key_budgets),
            redis_url=redis_url,
            prefix=settings.rate_limit_key_prefix,
            default_reservation_usd=settings.budget_reservation_usd,
            min_reservation_usd=settings.budget_min_reservation_usd,
            reservation_ttl=settings.budget_reservation_ttl,
            on_storage_down=settings.budget_storage_down,
            timeout=settings.rate_limit_storage_timeout,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.budgets) or self.default is not None

    def budget_of(self, key_id: str) -> Budget | None:
        """The key's budget (its own line, else `*`), or None: unlimited."""
        return self.budgets.get(key_id, self.default)

    async def start(self) -> None:
        if self.enabled and self._redis_url is not None:
            # Bounded, callers queueing for a connection (as the rate limiter's pool): an
            # unbounded one opens a connection per concurrent request.
            pool = BlockingConnectionPool.from_url(
                self._redis_url,
                max_connections=32,
                timeout=self._timeout,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=Retry(NoBackoff(), 1),  # one retry for a dropped idle connection
            )
            self._redis = Redis(connection_pool=pool)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            await self._redis.connection_pool.disconnect()

    # --- the ledger ---------------------------------------------------------------------------

    def _entry(self, key_id: str, budget: Budget) -> tuple[str, datetime]:
        period, ends = period_bounds(budget.period, self.clock())
        return f"{self.prefix}:budget:{key_id}:{period}", ends

    def _key_ttl(self, ends: datetime) -> int:
        # The entry lives to its period's end, plus a day for late settlements and clock skew.
        return max(1, int((ends - self.clock()).total_seconds()) + 86_400)

    def _redis_usable(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._down_until

    def _redis_failed(self, error: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            log.warning(
                "budget store unreachable (%s); %s",
                type(error).__name__,
                "budgets kept in memory, per instance"
                if self.on_storage_down == "memory"
                else "refusing budgeted keys' tasks with 503",
            )
        self._down_until = time.monotonic() + _REDIS_BACKOFF

    def _fallback(self) -> None:
        """Memory, or 503 (never unlimited)."""
        if self._redis is not None and self.on_storage_down == "reject":
            metrics.BUDGET_REFUSALS.labels(reason="unavailable").inc()
            raise BudgetUnavailable()

    async def remaining(self, key_id: str) -> BudgetState | None:
        """The key's state for the header (None: no budget, or the store cannot say)."""
        budget = self.budget_of(key_id)
        if budget is None:
            return None
        store_key, _ = self._entry(key_id, budget)
        if self._redis_usable():
            assert self._redis is not None
            try:
                async with asyncio.timeout(self._timeout):
                    left = await self._redis.eval(_PEEK, 1, store_key, budget.nano)
                return BudgetState(int(left))
            except _STORAGE_FAILURES as error:
                self._redis_failed(error)
        if self._redis is not None and self.on_storage_down == "reject":
            return None
        entry = self._memory.get(store_key, _MemoryEntry())
        return BudgetState(budget.nano - entry.spent - entry.reserved(time.time()))

    async def reserve(self, key_id: str, wanted_usd: float | None) -> Reservation | None:
        """Reserves the task's R (None: the key has no budget).

        :raises BudgetExhausted: less than the minimum is left.
        :raises BudgetUnavailable: Redis is down and the mode is `reject`.
        """
        budget = self.budget_of(key_id)
        if budget is None:
            return None
        wanted = round((wanted_usd or self.default_reservation_usd) * NANO)
        minimum = round(self.min_reservation_usd * NANO)
        store_key, ends = self._entry(key_id, budget)
        rid = uuid.uuid4().hex
        now = time.time()
        expires = now + self.reservation_ttl
        granted: int | None = None
        in_redis = False
        if self._redis_usable():
            assert self._redis is not None
            try:
                async with asyncio.timeout(self._timeout):
                    answer: Any = await self._redis.eval(
                        _RESERVE,
                        2,
                        store_key,
                        store_key + ":exp",
                        budget.nano,
                        wanted,
                        minimum,
                        rid,
                        int(now * 1000),
                        int(expires * 1000),
                        self._key_ttl(ends),
                    )
                granted, left = int(answer[0]), int(answer[1])
                in_redis = True
            except _STORAGE_FAILURES as error:
                self._redis_failed(error)
        if not in_redis:
            self._fallback()
            entry = self._memory.setdefault(store_key, _MemoryEntry())
            left = budget.nano - entry.spent - entry.reserved(now)
            granted = min(wanted, left)
            if granted <= 0 or granted < min(wanted, minimum):
                granted = 0
            else:
                entry.held[rid] = (granted, expires)
                left -= granted
        state = CURRENT_BUDGET.get()
        if state is None:
            state = BudgetState(left)
        else:
            state.remaining_nano = left
        if not granted:
            metrics.BUDGET_REFUSALS.labels(reason="exhausted").inc()
            raise BudgetExhausted(budget, ends, state)
        return Reservation(
            key_id=key_id,
            store_key=store_key,
            id=rid,
            usd=granted / NANO,
            in_redis=in_redis,
            budget_nano=budget.nano,
            key_ttl=self._key_ttl(ends),
            state=state,
        )

    async def settle(self, reservation: Reservation, spent_usd: float) -> None:
        """Releases the reservation and adds what the task spent. Never raises: a settlement
        Redis cannot take is logged (the reservation then expires by its TTL)."""
        if reservation.settled:
            return
        reservation.settled = True
        spent = max(0, round(spent_usd * NANO))
        metrics.BUDGET_SPEND.inc(spent_usd)
        left: int | None = None
        if reservation.in_redis:
            assert self._redis is not None
            try:
                async with asyncio.timeout(self._timeout):
                    answer: Any = await self._redis.eval(
                        _SETTLE,
                        2,
                        reservation.store_key,
                        reservation.store_key + ":exp",
                        reservation.id,
                        spent,
                        reservation.budget_nano,
                        reservation.key_ttl,
                    )
                left = int(answer)
            except _STORAGE_FAILURES as error:
                self._redis_failed(error)
                log.warning(
                    "a task's spend ($%.6f) could not be settled in the budget store; its "
                    "reservation expires in at most %.0f s",
                    spent_usd,
                    self.reservation_ttl,
                )
        else:
            entry = self._memory.setdefault(reservation.store_key, _MemoryEntry())
            entry.held.pop(reservation.id, None)
            entry.spent += spent
            left = reservation.budget_nano - entry.spent - entry.reserved(time.time())
        if left is not None and reservation.state is not None:
            reservation.state.remaining_nano = left
