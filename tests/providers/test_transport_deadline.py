"""Every provider call has one deadline across its retries: an upstream that accepts and never
answers costs at most `deadline`, not `timeout` times the attempts, and the error says how
long the call really waited. Both transports, both wire formats."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from agent_core import ProviderTimeoutError, UnavailableError
from tests.mock_upstreams import Fault, SilentListener
from tests.providers.upstream_helpers import PROVIDER_KINDS, TRANSPORTS, ask

both = pytest.mark.parametrize("transport", TRANSPORTS)
kinds = pytest.mark.parametrize("kind", PROVIDER_KINDS)


def _base_url(kind: str, silent: SilentListener) -> str:
    return silent.base_url if kind == "openai" else silent.base_url.removesuffix("/v1")


@kinds
@both
async def test_a_silent_upstream_costs_one_attempt_when_no_retry_fits(
    make_provider: Any, kind: str, transport: str
) -> None:
    with SilentListener() as silent:
        # The default deadline is 1.5 x timeout: after one timed-out attempt, no whole
        # attempt fits, so no retry starts although max_retries allows two.
        provider = make_provider(
            kind, transport, base_url=_base_url(kind, silent), timeout=0.4, max_retries=2
        )
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError) as caught:
            await provider.complete(ask())
        waited = time.monotonic() - started
    assert 0.4 <= waited < 0.6 + 0.5, waited
    assert silent.accepted == 1
    message = caught.value.message
    # The time really waited: at least the timeout, at most what this test saw (one decimal;
    # a loaded machine adds its own delay, so not always exactly 0.4).
    reported = re.match(
        rf"{kind}: no answer from the upstream after (\d+\.\d) s \(1 attempt;",
        message,
    )
    assert reported is not None, message
    assert 0.4 <= float(reported[1]) <= waited + 0.05, message
    assert "at most 0.4 s per attempt and 0.6 s per call" in message


@kinds
@both
async def test_retries_of_a_silent_upstream_stop_at_the_deadline(
    make_provider: Any, kind: str, transport: str
) -> None:
    with SilentListener() as silent:
        provider = make_provider(
            kind,
            transport,
            base_url=_base_url(kind, silent),
            timeout=0.3,
            deadline=1.0,
            max_retries=10,
        )
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError) as caught:
            await provider.complete(ask())
        waited = time.monotonic() - started
    # 0.3 s attempts, tiny waits: up to three fit in 1 s, a fourth never does. On a loaded
    # machine an attempt or a wait can overrun, and then one fewer fits: the count is what
    # the deadline allowed, and the message says it.
    assert waited <= 1.0 + 0.3, waited
    assert 2 <= silent.accepted <= 3
    assert f"({silent.accepted} attempts;" in caught.value.message
    reported = float(caught.value.message.split(" after ")[1].split(" s ")[0])
    assert abs(reported - waited) < 0.2


@kinds
@both
async def test_a_retry_whose_wait_overruns_the_deadline_is_not_started(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    # The upstream asks for 2 s; the call has 1 s in all: the error comes back at once.
    upstreams[kind].always = Fault.error(503, retry_after=2)
    provider = make_provider(kind, transport, timeout=0.5, deadline=1.0, max_retries=2)
    started = time.monotonic()
    with pytest.raises(UnavailableError):
        await provider.complete(ask())
    assert time.monotonic() - started < 0.5
    assert upstreams[kind].calls == 1


@kinds
@both
async def test_fast_failures_are_still_retried_within_the_deadline(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].fail_next(2, Fault.error(503, retry_after_ms=10))
    provider = make_provider(kind, transport, timeout=0.5, max_retries=2)
    completion = await provider.complete(ask())
    assert completion.text == "What is 2 + 2?"
    assert upstreams[kind].calls == 3


async def test_the_deadline_defaults_to_one_and_a_half_timeouts() -> None:
    from providers.provider_config import ProviderConfig

    assert ProviderConfig(type="openai").call_deadline == 45.0
    assert ProviderConfig(type="openai", timeout=120).call_deadline == 180.0
    assert ProviderConfig(type="openai", timeout=120, deadline=20).call_deadline == 20.0
