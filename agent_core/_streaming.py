"""The streams of the Rust classes, as Python async generators.

`Provider.stream` and `EchoProvider.stream` are defined in Rust but return these generators:
an async generator is a few lines here and awkward to build from Rust, and a generator gives
consumers `aclose()` for free.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TypeAlias

from agent_core._agent_core import Completion, CompletionRequest, Provider, ProviderError

__all__ = ["StreamItem", "failed_stream", "fallback_stream", "paced_stream"]

StreamItem: TypeAlias = str | Completion
"""What `Provider.stream` yields: text deltas (`str`), then one final `Completion`."""


async def fallback_stream(
    provider: Provider, request: CompletionRequest
) -> AsyncIterator[StreamItem]:
    """The stream of a provider that does not stream: one `complete` call, its text as one
    delta (none when empty), then the completion."""
    completion = await provider.complete(request)
    if not isinstance(completion, Completion):
        raise ProviderError(
            f"provider {str(provider.name)!r} returned {type(completion).__name__}, not Completion"
        )
    if completion.text:
        yield completion.text
    yield completion


async def paced_stream(
    deltas: Sequence[str], completion: Completion, latency: float
) -> AsyncIterator[StreamItem]:
    """`deltas`, then `completion`, with `latency` seconds spread evenly before the deltas
    (all of it before the completion when there are none): echo's stream, to be watched."""
    pause = latency / len(deltas) if deltas else latency
    for delta in deltas:
        if pause:
            await asyncio.sleep(pause)
        yield delta
    if not deltas and pause:
        await asyncio.sleep(pause)
    yield completion


async def failed_stream(error: BaseException) -> AsyncIterator[StreamItem]:
    """A stream that raises `error` on its first read (like any async generator that fails),
    rather than at the `stream(request)` call."""
    raise error
    yield  # unreachable; makes this an async generator
