"""Clients are created once per provider (never per request), reused across calls and
concurrent calls, and closed by aclose."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.providers.upstream_helpers import PROVIDER_KINDS, TRANSPORTS, ask

both = pytest.mark.parametrize("transport", TRANSPORTS)
kinds = pytest.mark.parametrize("kind", PROVIDER_KINDS)


@kinds
@both
async def test_no_client_exists_before_the_first_call(
    make_provider: Any, kind: str, transport: str
) -> None:
    provider = make_provider(kind, transport)
    assert (provider.clients_created, provider.clients_open) == (0, False)


@kinds
@both
async def test_one_client_serves_every_call_over_one_kept_alive_connection(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    provider = make_provider(kind, transport)
    for _ in range(5):
        await provider.complete(ask())
    assert provider.clients_created == 1
    assert len(upstreams[kind].connections) == 1


@kinds
@both
async def test_concurrent_calls_share_the_one_client(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    provider = make_provider(kind, transport)
    await asyncio.gather(*(provider.complete(ask()) for _ in range(20)))
    assert provider.clients_created == 1
    assert upstreams[kind].calls == 20


@kinds
@both
async def test_aclose_closes_the_client(make_provider: Any, kind: str, transport: str) -> None:
    provider = make_provider(kind, transport)
    await provider.complete(ask())
    assert provider.clients_open
    await provider.aclose()
    assert not provider.clients_open


@kinds
@both
async def test_a_provider_used_from_a_new_event_loop_gets_a_client_there(
    make_provider: Any, kind: str, transport: str
) -> None:
    # e.g. a CLI that calls asyncio.run twice with one provider built at start-up
    provider = make_provider(kind, transport)
    await provider.complete(ask())

    def in_another_loop() -> str:
        async def call() -> str:
            try:
                text: str = (await provider.complete(ask("again"))).text
                return text
            finally:
                await provider.aclose()

        return asyncio.run(call())

    assert await asyncio.to_thread(in_another_loop) == "again"
    assert provider.clients_created == 2
