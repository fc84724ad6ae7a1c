"""Fallback chains: the next provider serves while the chosen one stays unavailable."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_core import (
    AuthenticationError,
    Completion,
    CompletionRequest,
    InvalidRequestError,
    Message,
    NotConfiguredError,
    Provider,
    ProviderTimeoutError,
    RateLimitError,
    ReasoningAgent,
    UnavailableError,
)
from providers import FallbackProvider, ProviderRegistry, ProvidersSettings, load_registry
from tests.mock_upstreams import Fault, OpenAIMock
from tests.providers.plugin_helpers import isolate
from tests.providers.upstream_helpers import OPENAI_KEY, closed_port


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def ask(text: str = "hello", model: str | None = None) -> CompletionRequest:
    return CompletionRequest([Message("user", text)], model=model)


class Scripted(Provider):
    """A chain member that raises `error` or answers, and remembers what it was asked."""

    def __init__(self, name: str, error: Exception | None = None) -> None:
        self.name = name
        self.error = error
        self.asked: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        self.asked.append(request)
        if self.error is not None:
            raise self.error
        return Completion(f"{self.name} says hi", request.model or f"{self.name}-default")


@pytest.fixture
async def registry_with(
    openai_upstream: OpenAIMock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., ProviderRegistry]]:
    """Registries whose `upstream` provider talks to the mock OpenAI server."""
    monkeypatch.setenv("UPSTREAM_KEY", OPENAI_KEY)
    made: list[ProviderRegistry] = []

    def make(fallback: dict[str, list[str]], **tables: dict[str, Any]) -> ProviderRegistry:
        upstream = {
            "type": "openai_compatible",
            "base_url": openai_upstream.base_url,
            "api_key_env": "UPSTREAM_KEY",
            "max_retries": 0,
            "timeout": 5,
        }
        providers = {"upstream": upstream, **tables}
        settings = ProvidersSettings.isolated(
            default_provider="upstream", providers=providers, fallback=fallback
        )
        registry = load_registry(settings)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        await registry.aclose()


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
async def test_an_unavailable_kind_of_failure_falls_through(error: Exception) -> None:
    chain = FallbackProvider([Scripted("first", error), Scripted("second")])
    completion = await chain.complete(ask())
    assert (completion.text, completion.provider) == ("second says hi", "second")


@pytest.mark.parametrize(
    "error",
    [InvalidRequestError("bad request"), AuthenticationError("wrong key")],
    ids=lambda error: error.code,
)
async def test_invalid_requests_and_authentication_failures_do_not_fall_through(
    error: Exception,
) -> None:
    second = Scripted("second")
    chain = FallbackProvider([Scripted("first", error), second])
    with pytest.raises(type(error)):
        await chain.complete(ask())
    assert second.asked == []


async def test_the_first_provider_serves_when_it_can() -> None:
    chain = FallbackProvider([Scripted("first"), Scripted("second")])
    completion = await chain.complete(ask())
    assert completion.provider == "first"


async def test_fallbacks_are_asked_with_their_own_default_model() -> None:
    first, second = Scripted("first", UnavailableError("down")), Scripted("second")
    completion = await FallbackProvider([first, second]).complete(ask(model="first-large"))
    assert (first.asked[0].model, second.asked[0].model) == ("first-large", None)
    assert completion.model == "second-default"


async def test_when_every_member_fails_the_error_names_each_failure() -> None:
    chain = FallbackProvider(
        [Scripted("first", UnavailableError("refused")), Scripted("second", RateLimitError("429"))]
    )
    with pytest.raises(RateLimitError) as error:
        await chain.complete(ask())
    assert error.value.message == (
        "every provider in the fallback chain failed "
        "(first: unavailable: refused; second: rate_limited: 429)"
    )


async def test_several_samples_record_the_provider_that_served_them() -> None:
    chain = FallbackProvider([Scripted("first", UnavailableError("down")), Scripted("second")])
    completions = await chain.complete_many(ask(), 3)
    assert [c.provider for c in completions] == ["second"] * 3


async def test_a_refused_connection_is_served_by_the_next_provider(
    registry_with: Callable[..., ProviderRegistry],
) -> None:
    registry = registry_with(
        {"down": ["echo"]},
        down={
            "type": "openai_compatible",
            "base_url": f"http://127.0.0.1:{closed_port()}/v1",
            "max_retries": 0,
        },
    )
    answer = await ReasoningAgent(registry.get("down")).ask("served anyway")
    assert (answer.text, answer.provider, answer.steps[0].provider) == (
        "served anyway",
        "echo",
        "echo",
    )


async def test_an_upstream_503_is_served_by_the_next_provider(
    registry_with: Callable[..., ProviderRegistry], openai_upstream: OpenAIMock
) -> None:
    openai_upstream.fail_next(1, Fault.error(503))
    registry = registry_with({"upstream": ["echo"]})
    completion = await registry.get("upstream").complete(ask("after a 503"))
    assert (completion.text, completion.provider) == ("after a 503", "echo")
    assert openai_upstream.calls == 1


async def test_a_rate_limit_that_outlasts_the_retries_is_served_by_the_next_provider(
    registry_with: Callable[..., ProviderRegistry], openai_upstream: OpenAIMock
) -> None:
    openai_upstream.fail_next(1, Fault.error(429, retry_after=60))
    registry = registry_with({"upstream": ["echo"]})
    completion = await registry.get("upstream").complete(ask("rate limited"))
    assert completion.provider == "echo"


async def test_an_upstream_that_rejects_the_key_stops_the_chain(
    registry_with: Callable[..., ProviderRegistry], openai_upstream: OpenAIMock
) -> None:
    openai_upstream.fail_next(1, Fault.error(401))
    registry = registry_with({"upstream": ["echo"]})
    with pytest.raises(AuthenticationError):
        await registry.get("upstream").complete(ask())


async def test_a_provider_without_credentials_is_served_by_its_fallback(
    registry_with: Callable[..., ProviderRegistry],
) -> None:
    registry = registry_with({"openai": ["upstream"]})
    assert registry.status("openai").status == "missing_credentials"
    completion = await registry.get("openai").complete(ask("no key here"))
    assert (completion.text, completion.provider) == ("no key here", "upstream")


async def test_the_served_answer_keeps_the_upstream_usage(
    registry_with: Callable[..., ProviderRegistry], openai_upstream: OpenAIMock
) -> None:
    openai_upstream.enqueue(Fault.reply("from upstream", usage=(11, 7)))
    registry = registry_with({"anthropic": ["upstream"]})
    completion = await registry.get("anthropic").complete(ask())
    usage = completion.usage
    assert (completion.provider, usage.prompt_tokens, usage.completion_tokens) == (
        "upstream",
        11,
        7,
    )


def test_a_chain_is_named_after_its_first_provider(
    registry_with: Callable[..., ProviderRegistry],
) -> None:
    chain = registry_with({"upstream": ["echo"]}).get("upstream")
    assert (chain.name, repr(chain)) == ("upstream", "<FallbackProvider upstream -> echo>")
