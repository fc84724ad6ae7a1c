"""Retries of retryable upstream failures within one deadline: exponential backoff with
jitter, honouring retry-after, for both transports.

tenacity drives the loop, with the official SDKs' policy (their own retry loops are switched
off, because they know no deadline across attempts): the upstream's retry-after is obeyed when
it is at most `retry_after_cap` seconds, a longer one is not waited out (the caller gets the
RateLimitError with its retry_after at once), and otherwise the wait is
`initial_delay * 2**n` capped at `max_delay`, less up to 25 % jitter.

Every call has a deadline across its attempts and waits (`deadline`, by default 1.5 times the
per-attempt `timeout`). No attempt runs past it, and a retry is started only when a whole
attempt (`timeout`) still fits after its wait; otherwise the last error comes back at once. A
timeout's message says how long the call really waited, over how many attempts.

The first attempt runs outside tenacity, and before any of the retry loop's closures are made:
building its retry state costs more CPU than the whole lean call, and almost every call
succeeds first time.

A stream is one call too: opening it (until the status is known) is retried like any call,
and `StreamDeadline` holds every read after that to the same deadline. Nothing is retried once
the stream is open: its deltas may already be on their way to a user.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from agent_core import AgentError, ProviderTimeoutError
from providers.provider_config import ProviderConfig
from providers.transport.errors import is_retryable, timeout_error

T = TypeVar("T")

log = logging.getLogger("providers.transport")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    initial_delay: float = 0.5  # the SDKs' INITIAL_RETRY_DELAY
    max_delay: float = 8.0  # the SDKs' MAX_RETRY_DELAY
    retry_after_cap: float = 60.0  # longest retry-after we wait out
    timeout: float = 30.0  # seconds per attempt
    deadline: float = 45.0  # seconds per call: every attempt and wait

    @classmethod
    def from_config(cls, config: ProviderConfig) -> RetryPolicy:
        """`max_retries`, `timeout` and `deadline` from the config; the delays from `options`
        (tests use tiny ones)."""
        from providers.builtin_options import UpstreamOptions, read_options

        options = read_options(UpstreamOptions, config.options)
        return cls(
            max_retries=config.max_retries,
            timeout=config.timeout,
            deadline=config.call_deadline,
            initial_delay=options.retry_initial_delay,
            max_delay=options.retry_max_delay,
            retry_after_cap=options.retry_after_cap,
        )

    def should_retry(self, error: BaseException) -> bool:
        if not is_retryable(error):
            return False
        retry_after = getattr(error, "retry_after", None)
        return retry_after is None or retry_after <= self.retry_after_cap

    def delay(self, error: BaseException | None, retry_number: int) -> float:
        """Seconds to wait before retry number `retry_number` (1-based) after `error`."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and 0 < retry_after <= self.retry_after_cap:
            return float(retry_after)
        backoff = min(self.initial_delay * 2.0 ** (retry_number - 1), self.max_delay)
        return backoff * (1 - 0.25 * random.random())  # noqa: S311 (jitter, not crypto)


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    provider: str,
    started: float | None = None,
) -> T:
    """Awaits `call()`, retrying retryable `AgentError`s as `policy` says, all within the
    policy's deadline; the last error is raised as it is (a timeout's with the time waited).

    `started` (a `time.monotonic()`) is when the call's deadline began, if before now."""
    if started is None:
        started = time.monotonic()
    deadline_at = started + policy.deadline
    try:
        return await _attempt_within_deadline(call, policy, deadline_at, provider)
    except AgentError as error:
        first_error = error
    return await _retry(call, policy, first_error, started, deadline_at, provider)


async def _attempt_within_deadline(
    call: Callable[[], Awaitable[T]], policy: RetryPolicy, deadline_at: float, provider: str
) -> T:
    left = deadline_at - time.monotonic()
    try:
        async with asyncio.timeout(min(policy.timeout, left)):
            return await call()
    except TimeoutError:
        raise ProviderTimeoutError(f"{provider}: the upstream did not answer") from None


async def _retry(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    first_error: AgentError,
    started: float,
    deadline_at: float,
    provider: str,
) -> T:
    """After a failed first attempt: retries as the policy says, or the error as it ends."""
    attempts = 1

    def gave_up(error: AgentError) -> AgentError:
        if not isinstance(error, ProviderTimeoutError):
            return error
        waited = time.monotonic() - started
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        return ProviderTimeoutError(
            f"{provider}: no answer from the upstream after {waited:.1f} s ({tries}; at most "
            f"{policy.timeout:g} s per attempt and {policy.deadline:g} s per call)"
        )

    if policy.max_retries == 0 or not policy.should_retry(first_error):
        raise gave_up(first_error) from None
    replay: AgentError | None = first_error

    async def attempt() -> T:
        # Attempt 1 already happened: replay its error so tenacity waits and counts as usual.
        nonlocal replay, attempts
        if replay is not None:
            error, replay = replay, None
            raise error
        attempts += 1
        return await _attempt_within_deadline(call, policy, deadline_at, provider)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return policy.delay(error, state.attempt_number)

    def stop(state: RetryCallState) -> bool:
        # tenacity computes the wait before it asks whether to stop: a retry whose wait would
        # leave less than a whole attempt before the deadline is not started.
        if state.attempt_number > policy.max_retries:
            return True
        left_after_wait = deadline_at - time.monotonic() - state.upcoming_sleep
        return left_after_wait < min(policy.timeout, policy.deadline)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.info(
            "%s: retrying after %s (retry %d of %d) in %.3f s",
            provider,
            getattr(error, "code", type(error).__name__),
            state.attempt_number,
            policy.max_retries,
            state.upcoming_sleep,
        )

    retrying: AsyncRetrying = AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception(policy.should_retry),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        result: Any = await retrying(attempt)
    except AgentError as error:
        raise gave_up(error) from None
    return result  # type: ignore[no-any-return]


class StreamDeadline:
    """One stream's clock: its opening (`started` for `call_with_retries`) and each read after
    it share the call's deadline, and each read waits at most `timeout` for the next bytes,
    as each attempt of a plain call does."""

    def __init__(self, policy: RetryPolicy, *, provider: str) -> None:
        self.policy = policy
        self.provider = provider
        self.started = time.monotonic()
        self.deadline_at = self.started + policy.deadline

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """`await awaitable`, raising `ProviderTimeoutError` past the idle timeout or the
        deadline. A `TimeoutError` of the transport's own passes through, for the caller to
        map."""
        left = self.deadline_at - time.monotonic()
        budget = min(self.policy.timeout, left)
        if budget <= 0:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never awaited: no warning
            raise self.expired()
        try:
            async with asyncio.timeout(budget) as scope:
                return await awaitable
        except TimeoutError:
            if not scope.expired():
                raise
            if left <= self.policy.timeout:
                raise self.expired() from None
            raise timeout_error(self.provider, self.policy.timeout) from None

    def expired(self) -> ProviderTimeoutError:
        waited = time.monotonic() - self.started
        return ProviderTimeoutError(
            f"{self.provider}: the stream did not finish within the call's deadline "
            f"({waited:.1f} s; at most {self.policy.deadline:g} s per call)"
        )
