"""Retries: retryable failures (rate limited, timeout, unavailable) are retried with backoff,
honouring retry-after, up to max_retries; others are not. Attempts are counted at the mock
upstream, for both transports (one tenacity loop; the SDKs' own loops are off)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agent_core import AgentError
from providers.transport.retry import RetryPolicy
from tests.mock_upstreams import Fault
from tests.providers.upstream_helpers import PROVIDER_KINDS, TRANSPORTS, ask

both = pytest.mark.parametrize("transport", TRANSPORTS)
kinds = pytest.mark.parametrize("kind", PROVIDER_KINDS)


@kinds
@both
async def test_rate_limits_are_retried_until_the_upstream_answers(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].fail_next(2, Fault.rate_limited(retry_after=0.01))
    completion = await make_provider(kind, transport, max_retries=2).complete(ask())
    assert completion.text == "What is 2 + 2?"
    assert upstreams[kind].calls == 3


@kinds
@both
async def test_retries_stop_after_max_retries_with_the_last_error(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].always = Fault.error(503, retry_after_ms=10)
    with pytest.raises(AgentError) as caught:
        await make_provider(kind, transport, max_retries=2).complete(ask())
    assert caught.value.code == "unavailable"
    assert upstreams[kind].calls == 3


@kinds
@both
async def test_anthropic_style_overload_529_is_retried(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].fail_next(1, Fault.error(529, retry_after_ms=10))
    await make_provider(kind, transport, max_retries=1).complete(ask())
    assert upstreams[kind].calls == 2


@kinds
@both
async def test_a_timed_out_call_is_retried(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].fail_next(1, Fault.slow(1.0))
    # The deadline leaves room for a whole second attempt after the first timed out.
    provider = make_provider(kind, transport, max_retries=1, timeout=0.2, deadline=1.0)
    await provider.complete(ask())
    assert upstreams[kind].calls == 2


@kinds
@both
async def test_a_dropped_connection_is_retried(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].fail_next(1, Fault.drop())
    await make_provider(kind, transport, max_retries=1).complete(ask())
    assert upstreams[kind].calls == 2


NOT_RETRIED = [
    ("http-400", Fault.error(400)),
    ("http-401", Fault.error(401)),
    ("http-403", Fault.error(403)),
    ("http-404", Fault.error(404)),
    ("truncated-json", Fault.truncated()),
    ("json-missing-fields", Fault.missing_fields()),
]


@kinds
@both
@pytest.mark.parametrize("fault", [f for _, f in NOT_RETRIED], ids=[i for i, _ in NOT_RETRIED])
async def test_errors_that_a_retry_cannot_fix_are_not_retried(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str, fault: Fault
) -> None:
    upstreams[kind].always = fault
    with pytest.raises(AgentError):
        await make_provider(kind, transport, max_retries=2).complete(ask())
    assert upstreams[kind].calls == 1


@kinds
@both
async def test_the_upstreams_retry_after_is_waited_before_the_retry(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    # 0.6 s is longer than either transport's own first backoff (lean 0.01 s here, SDKs
    # at most 0.5 s), so only an honoured retry-after explains the wait.
    upstreams[kind].fail_next(1, Fault.rate_limited(retry_after=0.6))
    started = time.monotonic()
    await make_provider(kind, transport, max_retries=1).complete(ask())
    assert time.monotonic() - started >= 0.6
    assert upstreams[kind].calls == 2


@kinds
async def test_a_retry_after_beyond_the_cap_is_not_waited_out_but_reported(
    make_provider: Any, upstreams: dict[str, Any], kind: str
) -> None:
    upstreams[kind].always = Fault.rate_limited(retry_after=30)
    provider = make_provider(kind, "lean", max_retries=2, options={"retry_after_cap": 1.0})
    with pytest.raises(AgentError) as caught:
        await provider.complete(ask())
    assert (caught.value.code, caught.value.retry_after) == ("rate_limited", 30.0)
    assert upstreams[kind].calls == 1


@kinds
@both
async def test_x_should_retry_false_from_the_upstream_stops_retries(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].always = Fault.error(503, headers={"x-should-retry": "false"})
    with pytest.raises(AgentError) as caught:
        await make_provider(kind, transport, max_retries=2).complete(ask())
    assert caught.value.code == "unavailable"
    assert upstreams[kind].calls == 1


@kinds
@both
async def test_x_should_retry_true_from_the_upstream_retries_even_a_400(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].fail_next(
        1, Fault.error(400, headers={"x-should-retry": "true", "retry-after-ms": "10"})
    )
    await make_provider(kind, transport, max_retries=1).complete(ask())
    assert upstreams[kind].calls == 2


@kinds
@both
async def test_max_retries_zero_makes_exactly_one_attempt(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].always = Fault.rate_limited(retry_after=0.01)
    with pytest.raises(AgentError):
        await make_provider(kind, transport, max_retries=0).complete(ask())
    assert upstreams[kind].calls == 1


def test_backoff_doubles_per_retry_with_up_to_a_quarter_of_jitter() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=100.0)
    for retry, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)]:
        assert all(0.75 * base <= policy.delay(None, retry) <= base for _ in range(50))


def test_backoff_never_exceeds_max_delay() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=3.0)
    assert max(policy.delay(None, 10) for _ in range(50)) <= 3.0


def test_retry_after_within_the_cap_replaces_the_backoff() -> None:
    error = AgentError("slow down", retry_after=2.5)
    assert RetryPolicy(retry_after_cap=60).delay(error, 1) == 2.5


def test_retry_after_over_the_cap_is_not_retried() -> None:
    from agent_core import RateLimitError

    policy = RetryPolicy(retry_after_cap=60)
    assert policy.should_retry(RateLimitError("x", retry_after=30))
    assert not policy.should_retry(RateLimitError("x", retry_after=61))
