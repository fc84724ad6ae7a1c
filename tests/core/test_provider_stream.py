"""The streaming half of the provider contract: `Provider.stream`'s default for providers that
do not stream, and `EchoProvider`'s word-by-word stream."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import agent_core
from agent_core import (
    Capabilities,
    Completion,
    CompletionRequest,
    EchoProvider,
    Message,
    Provider,
    ProviderError,
    RateLimitError,
    StreamItem,
    Usage,
)


def ask(text: str = "The answer is 4.", **options: Any) -> CompletionRequest:
    return CompletionRequest([Message("system", "be brief"), Message("user", text)], **options)


async def collect(stream: AsyncIterator[StreamItem]) -> tuple[list[str], Completion]:
    """The deltas and the final completion, checking the contract's shape on the way."""
    items = [item async for item in stream]
    *deltas, final = items
    assert all(isinstance(d, str) and d for d in deltas), items
    assert isinstance(final, Completion), items
    assert "".join(deltas) == final.text  # type: ignore[arg-type]
    return deltas, final  # type: ignore[return-value]


class OnlyComplete(Provider):
    """A plugin that implements `complete` and nothing else."""

    name = "only-complete"

    def __init__(self, reply: Any = None, error: Exception | None = None) -> None:
        self.reply = reply
        self.error = error
        self.calls = 0

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.reply is not None:
            return self.reply  # type: ignore[no-any-return]
        return Completion("all at once", "m-1", usage=Usage(3, 3), provider=self.name)


async def test_a_provider_without_stream_streams_its_completion_as_one_delta() -> None:
    provider = OnlyComplete()
    deltas, final = await collect(provider.stream(ask()))
    assert deltas == ["all at once"]
    assert final == await provider.complete(ask())
    assert provider.calls == 2
    assert provider.capabilities == Capabilities()  # it does not claim to stream


async def test_an_empty_completion_is_streamed_as_no_delta_and_the_completion() -> None:
    provider = OnlyComplete(reply=Completion("", "m-1"))
    assert [item async for item in provider.stream(ask())] == [Completion("", "m-1")]


async def test_the_default_stream_raises_the_error_complete_raises() -> None:
    stream = OnlyComplete(error=RateLimitError("slow down", retry_after=3)).stream(ask())
    with pytest.raises(RateLimitError) as caught:
        await anext(stream)
    assert caught.value.retry_after == 3


async def test_the_default_stream_rejects_a_complete_that_returns_no_completion() -> None:
    with pytest.raises(ProviderError, match="returned str, not Completion"):
        await collect(OnlyComplete(reply="just text").stream(ask()))


async def test_the_default_stream_is_lazy_and_closable() -> None:
    provider = OnlyComplete()
    stream = provider.stream(ask())
    assert inspect.isasyncgen(stream)  # consumers may `aclose()` it
    assert provider.calls == 0  # nothing happens before the first read
    assert await anext(stream) == "all at once"
    await stream.aclose()


async def test_echo_streams_word_by_word_and_ends_with_its_completion() -> None:
    echo = EchoProvider()
    deltas, final = await collect(echo.stream(ask("The answer is   4.\n")))
    assert deltas == ["The", " answer", " is", "   4.", "\n"]
    assert final == await echo.complete(ask("The answer is   4.\n"))
    assert EchoProvider.capabilities == Capabilities(streaming=True)
    assert echo.capabilities.streaming


async def test_echo_streams_what_complete_answers_for_max_tokens_and_stop() -> None:
    echo = EchoProvider(model="echo-2", name="offline")
    for request in (
        ask("one two three four", max_tokens=2),
        ask("first. END second", stop=[" END"]),
    ):
        _, final = await collect(echo.stream(request))
        assert final == await echo.complete(request)
    deltas, final = await collect(echo.stream(ask("one two three four", max_tokens=2)))
    assert (deltas, final.finish_reason, final.provider) == (["one", " two"], "length", "offline")


async def test_echo_spreads_its_latency_over_the_deltas() -> None:
    echo = EchoProvider(latency=0.4)
    started = time.perf_counter()
    arrivals = []
    async for _ in echo.stream(ask("one two three four")):
        arrivals.append(time.perf_counter() - started)
    # Four deltas 0.1 s apart, then the completion right after the last one.
    assert len(arrivals) == 5
    assert 0.08 <= arrivals[0] < 0.25, arrivals
    assert 0.38 <= arrivals[-1] < 0.6, arrivals
    assert arrivals[-1] - arrivals[-2] < 0.05, arrivals


async def test_an_empty_echo_waits_its_latency_then_completes() -> None:
    echo = EchoProvider(latency=0.1)
    request = CompletionRequest([Message("system", "no user message")])
    started = time.perf_counter()
    items = [item async for item in echo.stream(request)]
    assert time.perf_counter() - started >= 0.09
    assert items == [await EchoProvider().complete(request)]


async def test_a_subclass_overriding_stream_is_called_instead() -> None:
    class Native(Provider):
        capabilities = Capabilities(streaming=True)

        async def complete(self, request: CompletionRequest) -> Completion:
            raise AssertionError("a native stream does not call complete")

        async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
            yield "a"
            yield "b"
            yield Completion("ab", "m")

    deltas, final = await collect(Native().stream(ask()))
    assert (deltas, final.text) == (["a", "b"], "ab")


def test_stream_item_is_exported() -> None:
    assert "StreamItem" in agent_core.__all__
    assert agent_core.StreamItem == str | Completion
