"""Fallback chains stream too: the next member serves a stream whose member failed before its
first delta, with the fall-through kinds of `complete`; once a delta is out, the error is the
caller's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_core import (
    AgentError,
    AuthenticationError,
    Completion,
    CompletionRequest,
    InvalidRequestError,
    Message,
    NotConfiguredError,
    Provider,
    ProviderTimeoutError,
    RateLimitError,
    StreamItem,
    UnavailableError,
)
from providers import FallbackProvider, ProviderRegistry, ProvidersSettings, load_registry
from tests.mock_upstreams import Fault, OpenAIMock
from tests.providers.plugin_helpers import isolate
from tests.providers.upstream_helpers import OPENAI_KEY


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def ask(text: str = "hello there", model: str | None = None) -> CompletionRequest:
    return CompletionRequest([Message("user", text)], model=model)


class Streaming(Provider):
    """A chain member that streams `words`, then raises `error` (if any) after `fail_after`
    of them; it records what it was asked and whether its stream was closed."""

    def __init__(
        self, name: str, error: Exception | None = None, fail_after: int = 0, words: int = 3
    ) -> None:
        self.name = name
        self.error = error
        self.fail_after = fail_after
        self.words = words
        self.asked: list[CompletionRequest] = []
        self.closed = False

    async def complete(self, request: CompletionRequest) -> Completion:
        raise AssertionError("a chain's stream asks its members to stream")

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        self.asked.append(request)
        try:
            deltas = [f"{self.name}{i} " for i in range(self.words)]
            for i, delta in enumerate(deltas):
                if self.error is not None and i == self.fail_after:
                    raise self.error
                yield delta
            if self.error is not None:
                raise self.error
            yield Completion("".join(deltas), request.model or f"{self.name}-default")
        finally:
            self.closed = True


async def collect(stream: AsyncIterator[StreamItem]) -> tuple[list[str], Completion]:
    items = [item async for item in stream]
    *deltas, final = items
    assert isinstance(final, Completion)
    return [str(d) for d in deltas], final


@pytest.mark.parametrize(
    "error",
    [
        UnavailableError("connection refused"),
        ProviderTimeoutError("no answer in 5 s"),
        RateLimitError("slow down", retry_after=30.0),
        NotConfiguredError("KEY is not set"),
    ],
    ids=lambda error: error.code,
)
async def test_a_member_failing_before_its_first_delta_falls_through(error: Exception) -> None:
    first, second = Streaming("first", error), Streaming("second")
    deltas, final = await collect(FallbackProvider([first, second]).stream(ask(model="big")))
    assert deltas == ["second0 ", "second1 ", "second2 "]
    assert (final.text, final.provider, final.model) == (
        "second0 second1 second2 ",
        "second",
        "second-default",  # asked without the first member's model
    )
    assert (first.asked[0].model, second.asked[0].model) == ("big", None)
    assert first.closed and second.closed


async def test_a_member_failing_after_a_delta_raises_and_the_chain_stops() -> None:
    first, second = Streaming("first", UnavailableError("dropped"), fail_after=1), Streaming("b")
    received: list[StreamItem] = []
    with pytest.raises(UnavailableError, match="dropped"):
        async for item in FallbackProvider([first, second]).stream(ask()):
            received.append(item)
    assert received == ["first0 "]
    assert second.asked == []


@pytest.mark.parametrize(
    "error",
    [InvalidRequestError("bad request"), AuthenticationError("wrong key")],
    ids=lambda error: error.code,
)
async def test_invalid_requests_and_authentication_failures_stop_a_stream(
    error: Exception,
) -> None:
    second = Streaming("second")
    with pytest.raises(type(error)):
        await collect(FallbackProvider([Streaming("first", error), second]).stream(ask()))
    assert second.asked == []


async def test_when_every_member_fails_the_stream_error_names_each_failure() -> None:
    chain = FallbackProvider(
        [
            Streaming("first", UnavailableError("refused")),
            Streaming("second", RateLimitError("429")),
        ]
    )
    with pytest.raises(RateLimitError) as caught:
        await collect(chain.stream(ask()))
    assert caught.value.message == (
        "every provider in the fallback chain failed "
        "(first: unavailable: refused; second: rate_limited: 429)"
    )


async def test_members_without_a_stream_are_streamed_through_their_complete() -> None:
    class Plain(Provider):
        def __init__(self, name: str, error: AgentError | None = None) -> None:
            self.name = name
            self.error = error

        async def complete(self, request: CompletionRequest) -> Completion:
            if self.error is not None:
                raise self.error
            return Completion(f"{self.name} says hi", "m")

    chain = FallbackProvider([Plain("first", UnavailableError("down")), Plain("second")])
    deltas, final = await collect(chain.stream(ask()))
    assert (deltas, final.provider) == (["second says hi"], "second")


async def test_closing_the_chains_stream_closes_the_members_stream() -> None:
    member = Streaming("first", words=5)
    stream = FallbackProvider([member, Streaming("second")]).stream(ask())
    assert await anext(stream) == "first0 "
    await stream.aclose()  # type: ignore[attr-defined]
    assert member.closed


# -- through the registry, against a real upstream ---------------------------------------------


@pytest.fixture
async def registry_with(
    openai_upstream: OpenAIMock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., ProviderRegistry]]:
    monkeypatch.setenv("UPSTREAM_KEY", OPENAI_KEY)
    made: list[ProviderRegistry] = []

    def make(fallback: dict[str, list[str]], **transport: Any) -> ProviderRegistry:
        upstream = {
            "type": "openai_compatible",
            "base_url": openai_upstream.base_url,
            "api_key_env": "UPSTREAM_KEY",
            "max_retries": 0,
            "timeout": 5,
            **transport,
        }
        settings = ProvidersSettings.isolated(
            default_provider="upstream", providers={"upstream": upstream}, fallback=fallback
        )
        registry = load_registry(settings)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        await registry.aclose()


TRANSPORTS = pytest.mark.parametrize("transport", ["lean", "sdk"])


@TRANSPORTS
async def test_an_upstream_503_before_the_stream_is_streamed_by_the_next_provider(
    registry_with: Callable[..., ProviderRegistry], openai_upstream: OpenAIMock, transport: str
) -> None:
    openai_upstream.fail_next(1, Fault.error(503))
    chain = registry_with({"upstream": ["echo"]}, transport=transport).get("upstream")
    deltas, final = await collect(chain.stream(ask("after a 503")))
    assert (deltas, final.provider) == (["after", " a", " 503"], "echo")


@TRANSPORTS
async def test_an_upstream_that_drops_before_its_first_delta_is_replaced(
    registry_with: Callable[..., ProviderRegistry], openai_upstream: OpenAIMock, transport: str
) -> None:
    openai_upstream.enqueue(Fault.drop_mid_stream(after=0))
    chain = registry_with({"upstream": ["echo"]}, transport=transport).get("upstream")
    deltas, final = await collect(chain.stream(ask("served anyway")))
    assert (deltas, final.provider) == (["served", " anyway"], "echo")


@TRANSPORTS
async def test_an_upstream_that_drops_mid_stream_is_not_replaced(
    registry_with: Callable[..., ProviderRegistry], openai_upstream: OpenAIMock, transport: str
) -> None:
    openai_upstream.enqueue(Fault.drop_mid_stream(after=1))
    chain = registry_with({"upstream": ["echo"]}, transport=transport).get("upstream")
    received: list[StreamItem] = []
    with pytest.raises(UnavailableError):
        async for item in chain.stream(ask("half an answer")):
            received.append(item)
    assert received == ["half"]


async def test_a_provider_without_credentials_streams_through_its_fallback(
    registry_with: Callable[..., ProviderRegistry],
) -> None:
    registry = registry_with({"openai": ["upstream"]})
    assert registry.status("openai").status == "missing_credentials"
    deltas, final = await collect(registry.get("openai").stream(ask("no key here")))
    assert (deltas, final.provider) == (["no", " key", " here"], "upstream")


async def test_breaking_out_of_a_chains_stream_closes_the_upstream_connection(
    registry_with: Callable[..., ProviderRegistry], openai_upstream: OpenAIMock
) -> None:
    openai_upstream.delta_delay = 0.2
    chain = registry_with({"upstream": ["echo"]}).get("upstream")
    async for item in chain.stream(ask("one two three four five six")):
        assert item == "one"
        break
    started = time.monotonic()
    while list(openai_upstream.stream_outcomes) != ["client_closed"]:
        assert time.monotonic() - started < 0.5
        await asyncio.sleep(0.005)
