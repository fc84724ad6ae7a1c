"""Retries of retryable upstream failures: exponential backoff with jitter, honouring
retry-after, for the lean transport (the SDK transport uses the SDKs' own retry loop).

tenacity drives the loop; the policy mirrors the official SDKs' so both transports make the
same number of attempts: the upstream's retry-after is obeyed when it is at most
`retry_after_cap` seconds, a longer one is not waited out (the caller gets the RateLimitError
with its retry_after at once), and otherwise the wait is `initial_delay * 2**n` capped at
`max_delay`, less up to 25 % jitter.

The first attempt runs outside tenacity: building its retry state costs more CPU than the
whole lean call, and almost every call succeeds first time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from agent_core import AgentError
from providers.provider_config import ProviderConfig
from providers.transport.errors import is_retryable

T = TypeVar("T")

log = logging.getLogger("providers.transport")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    initial_delay: float = 0.5  # the SDKs' INITIAL_RETRY_DELAY
    max_delay: float = 8.0  # the SDKs' MAX_RETRY_DELAY
    retry_after_cap: float = 60.0  # longest retry-after we wait out

    @classmethod
    def from_config(cls, config: ProviderConfig) -> RetryPolicy:
        """`max_retries` from the config; the delays from `options` (tests use tiny ones)."""
        options = config.options
        return cls(
            max_retries=config.max_retries,
            initial_delay=float(options.get("retry_initial_delay", cls.initial_delay)),
            max_delay=float(options.get("retry_max_delay", cls.max_delay)),
            retry_after_cap=float(options.get("retry_after_cap", cls.retry_after_cap)),
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
    call: Callable[[], Awaitable[T]], policy: RetryPolicy, *, provider: str
) -> T:
    """Awaits `call()`, retrying retryable `AgentError`s as `policy` says; the last error
    is raised as it is."""
    try:
        return await call()
    except AgentError as error:
        if policy.max_retries == 0 or not policy.should_retry(error):
            raise
        first_error: AgentError | None = error

    async def attempt() -> T:
        # Attempt 1 already happened: replay its error so tenacity waits and counts as usual.
        nonlocal first_error
        if first_error is not None:
            error, first_error = first_error, None
            raise error
        return await call()

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return policy.delay(error, state.attempt_number)

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
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=wait,
        retry=retry_if_exception(policy.should_retry),
        before_sleep=before_sleep,
        reraise=True,
    )
    result: Any = await retrying(attempt)
    return result  # type: ignore[no-any-return]
