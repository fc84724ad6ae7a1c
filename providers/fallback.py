"""Fallback chains: when the chosen provider stays unavailable, the next one serves.

A chain is configured per provider in plugins.toml (`[fallback] openai = ["anthropic", "echo"]`).
Each member keeps its own retries; the chain moves on only once a member has given up, and
only for failures another provider can cure:

- falls through: `UnavailableError` (refused connection, 5xx), `ProviderTimeoutError`,
  `RateLimitError` (after the member's own retries), `NotConfiguredError` (missing credentials);
- stops the chain: `InvalidRequestError` (the request itself is wrong, it would fail anywhere),
  `AuthenticationError` (a wrong key is the operator's to fix and must not be hidden behind a
  quietly serving backup), `ProviderError` (a malformed answer is a bug to see),
  `BudgetExceededError`, and any other exception.

The request's `model` names a model of the chosen provider, so the fallbacks are asked with
`model=None`: each uses its own configured default model. The returned `Completion` records in
`provider` which member really served it.

A stream falls through the same way, but only while no delta has been yielded: once text is on
its way to a user, the next member's answer cannot replace it, and the error is raised.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from agent_core import (
    AgentError,
    Capabilities,
    Completion,
    CompletionRequest,
    NotConfiguredError,
    Provider,
    ProviderTimeoutError,
    RateLimitError,
    UnavailableError,
)

__all__ = ["FALLS_THROUGH", "FallbackProvider"]

log = logging.getLogger("providers.fallback")

FALLS_THROUGH: tuple[type[AgentError], ...] = (
    UnavailableError,
    ProviderTimeoutError,
    RateLimitError,
    NotConfiguredError,
)
"""The error kinds after which the next provider in the chain is tried."""

T = TypeVar("T")


class FallbackProvider(Provider):
    """Tries `chain[0]`, then each next provider while the previous stays unavailable.

    Behaves as `chain[0]` (its name and capabilities) so callers need not know a chain is
    there; the members are owned by the registry, which closes them.
    """

    def __init__(self, chain: Sequence[Provider], *, name: str | None = None) -> None:
        if not chain:
            raise ValueError("a fallback chain needs at least one provider")
        self.chain: tuple[Provider, ...] = tuple(chain)
        self.name = name or str(self.chain[0].name)

    @property
    def capabilities(self) -> Capabilities:
        """The head's, read at each use: a provider may learn what its upstream can do."""
        return self.chain[0].capabilities

    @capabilities.setter
    def capabilities(self, value: Capabilities) -> None:
        self.chain[0].capabilities = value

    def __repr__(self) -> str:
        members = " -> ".join(str(member.name) for member in self.chain)
        return f"<FallbackProvider {members}>"

    async def complete(self, request: CompletionRequest) -> Completion:
        async def one(provider: Provider, req: CompletionRequest) -> Completion:
            return await provider.complete(req)

        return await self._serve(request, one, lambda completion, by: _served_by(completion, by))

    async def complete_many(self, request: CompletionRequest, n: int) -> list[Completion]:
        async def many(provider: Provider, req: CompletionRequest) -> list[Completion]:
            return list(await provider.complete_many(req, n))

        return await self._serve(
            request, many, lambda completions, by: [_served_by(c, by) for c in completions]
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        failures: list[tuple[str, AgentError]] = []
        for position, provider in enumerate(self.chain):
            name = str(provider.name)
            asked = request if position == 0 else request.with_model(None)
            streamed = False
            items = provider.stream(asked)
            try:
                async for item in items:
                    if isinstance(item, Completion):
                        item = _served_by(item, name)
                    else:
                        streamed = True
                    yield item
                return
            except FALLS_THROUGH as error:
                if streamed:
                    raise
                failures.append((name, error))
                self._log_fall_through(position, error)
            finally:
                aclose = getattr(items, "aclose", None)  # a plugin's iterator may have none
                if aclose is not None:
                    await aclose()
        raise _exhausted(failures)

    async def aclose(self) -> None:
        """Nothing to close: the members belong to the registry."""

    def _log_fall_through(self, position: int, error: AgentError) -> None:
        if position + 1 < len(self.chain):
            log.warning(
                "provider %r failed with %s; falling back to %r",
                str(self.chain[position].name),
                error.code,
                str(self.chain[position + 1].name),
            )

    async def _serve(
        self,
        request: CompletionRequest,
        call: Callable[[Provider, CompletionRequest], Awaitable[T]],
        label: Callable[[T, str], T],
    ) -> T:
        failures: list[tuple[str, AgentError]] = []
        for position, provider in enumerate(self.chain):
            name = str(provider.name)
            asked = request if position == 0 else request.with_model(None)
            try:
                result = await call(provider, asked)
            except FALLS_THROUGH as error:
                failures.append((name, error))
                self._log_fall_through(position, error)
                continue
            return label(result, name)
        raise _exhausted(failures)


def _served_by(completion: Completion, provider: str) -> Completion:
    """The same completion, recording which provider served it."""
    return Completion(
        completion.text,
        completion.model,
        finish_reason=completion.finish_reason,
        usage=completion.usage,
        provider=provider,
        note=completion.note,
    )


def _exhausted(failures: list[tuple[str, AgentError]]) -> AgentError:
    """The last member's error kind, with every member's failure in the message."""
    if len(failures) == 1:
        return failures[0][1]
    last = failures[-1][1]
    tried = "; ".join(f"{name}: {error.code}: {error.message}" for name, error in failures)
    return type(last)(f"every provider in the fallback chain failed ({tried})", last.retry_after)
