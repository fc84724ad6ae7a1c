"""A consumer that stops reading a stream closes the upstream connection at once, whichever
way it stops: it breaks out of the loop, calls `aclose()`, its task is cancelled, or the
stream's deadline passes. The mock upstream is the witness: it records a stream whose client
closed the connection before the last delta. Both transports, both wire formats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import pytest

from agent_core import ProviderTimeoutError
from tests.mock_upstreams import Fault
from tests.providers.upstream_helpers import PROVIDER_KINDS, TRANSPORTS, ask

kinds = pytest.mark.parametrize("kind", PROVIDER_KINDS)
both = pytest.mark.parametrize("transport", TRANSPORTS)

WORDS = "one two three four five six seven eight nine ten"
DELTA_DELAY = 0.2  # the whole stream takes 2 s


async def eventually(condition: Callable[[], bool], within: float) -> float:
    """Seconds until `condition()` holds; fails after `within` seconds."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def closed_by_client(upstream: Any) -> Callable[[], bool]:
    return lambda: list(upstream.stream_outcomes) == ["client_closed"]


@pytest.fixture
def slow_streams(upstreams: dict[str, Any]) -> dict[str, Any]:
    for upstream in upstreams.values():
        upstream.delta_delay = DELTA_DELAY
    return upstreams


@kinds
@both
async def test_breaking_out_of_a_stream_closes_the_upstream_connection(
    make_provider: Any, slow_streams: dict[str, Any], kind: str, transport: str
) -> None:
    provider = make_provider(kind, transport)
    async for item in provider.stream(ask(WORDS)):
        assert item == "one"
        break
    # Nothing refers to the stream any more: the event loop closes it, and it its response.
    waited = await eventually(closed_by_client(slow_streams[kind]), within=1.0)
    assert waited < 0.5, waited
    # The provider streams on as before.
    slow_streams[kind].delta_delay = 0
    again = [item async for item in provider.stream(ask("again"))]
    assert again[0] == "again"


@kinds
@both
async def test_aclose_closes_the_upstream_connection_at_once(
    make_provider: Any, slow_streams: dict[str, Any], kind: str, transport: str
) -> None:
    stream = make_provider(kind, transport).stream(ask(WORDS))
    assert isinstance(stream, AsyncGenerator)
    assert [await anext(stream), await anext(stream)] == ["one", " two"]
    await stream.aclose()
    waited = await eventually(closed_by_client(slow_streams[kind]), within=1.0)
    assert waited < 0.5, waited


@kinds
@both
async def test_cancelling_the_consuming_task_closes_the_upstream_connection(
    make_provider: Any, slow_streams: dict[str, Any], kind: str, transport: str
) -> None:
    provider = make_provider(kind, transport)
    received: list[Any] = []

    async def consume() -> None:
        async for item in provider.stream(ask(WORDS)):
            received.append(item)

    task = asyncio.create_task(consume())
    await eventually(lambda: len(received) == 2, within=2.0)
    task.cancel()  # while it waits for the third delta
    with pytest.raises(asyncio.CancelledError):
        await task
    waited = await eventually(closed_by_client(slow_streams[kind]), within=1.0)
    assert waited < 0.5, waited
    assert received == ["one", " two"]


@kinds
@both
async def test_cancelling_while_the_stream_opens_leaves_the_provider_usable(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].enqueue(Fault.slow(0.3))  # before the headers
    provider = make_provider(kind, transport)
    task = asyncio.create_task(anext(provider.stream(ask(WORDS))))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    again = [item async for item in provider.stream(ask("again"))]
    assert again[0] == "again"
    assert list(upstreams[kind].stream_outcomes) == ["completed"]  # the first never streamed


@kinds
@both
async def test_a_stream_past_its_deadline_closes_the_upstream_connection(
    make_provider: Any, slow_streams: dict[str, Any], kind: str, transport: str
) -> None:
    provider = make_provider(kind, transport, timeout=0.5, deadline=0.5)
    with pytest.raises(ProviderTimeoutError):
        async for _ in provider.stream(ask(WORDS)):
            pass
    await eventually(closed_by_client(slow_streams[kind]), within=1.0)
