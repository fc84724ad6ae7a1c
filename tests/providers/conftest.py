"""Fixtures for the built-in providers' tests: mock upstreams and providers pointed at them.

The mock servers live for the whole session (one thread each) and are reset before every
test; providers are built per test, in the test's event loop, and closed after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from providers.builtin.anthropic import AnthropicProvider
from providers.builtin.openai import OpenAIProvider
from providers.builtin.openai_compatible import OpenAICompatibleProvider
from providers.provider_config import ProviderConfig
from providers.transport.base import UpstreamProvider
from tests.mock_upstreams import AnthropicMock, MockUpstream, OpenAIMock
from tests.providers.upstream_helpers import ANTHROPIC_KEY, FAST_RETRIES, OPENAI_KEY


@pytest.fixture(scope="session")
def openai_mock_session() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key=OPENAI_KEY) as mock:
        yield mock


@pytest.fixture(scope="session")
def anthropic_mock_session() -> Iterator[AnthropicMock]:
    with AnthropicMock(api_key=ANTHROPIC_KEY) as mock:
        yield mock


@pytest.fixture(scope="session")
def compatible_mock_session() -> Iterator[OpenAIMock]:
    """An OpenAI-style server that wants no key, like a local Ollama or vLLM."""
    with OpenAIMock() as mock:
        yield mock


@pytest.fixture
def compatible_upstream(compatible_mock_session: OpenAIMock) -> OpenAIMock:
    compatible_mock_session.reset()
    return compatible_mock_session


@pytest.fixture
def openai_upstream(openai_mock_session: OpenAIMock) -> OpenAIMock:
    openai_mock_session.reset()
    return openai_mock_session


@pytest.fixture
def anthropic_upstream(anthropic_mock_session: AnthropicMock) -> AnthropicMock:
    anthropic_mock_session.reset()
    return anthropic_mock_session


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The providers' keys in the environment, and none of the SDKs' other variables."""
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


ProviderFactory = Callable[..., UpstreamProvider]


@pytest.fixture
async def make_provider(
    keys: None,
    openai_upstream: OpenAIMock,
    anthropic_upstream: AnthropicMock,
    compatible_upstream: OpenAIMock,
) -> AsyncIterator[ProviderFactory]:
    """`make_provider("openai", "sdk", max_retries=1)`: a provider at its mock upstream.

    Keyword arguments are ProviderConfig fields; `options` are merged over FAST_RETRIES.
    """
    made: list[UpstreamProvider] = []

    def make(
        kind: str, transport: str = "lean", *, name: str | None = None, **fields: Any
    ) -> UpstreamProvider:
        options = {**FAST_RETRIES, **fields.pop("options", {})}
        fields.setdefault("max_retries", 0)
        fields.setdefault("timeout", 5.0)
        cls: type[UpstreamProvider]
        upstream: MockUpstream
        if kind == "openai":
            cls, upstream = OpenAIProvider, openai_upstream
        elif kind == "anthropic":
            cls, upstream = AnthropicProvider, anthropic_upstream
        elif kind == "openai_compatible":
            cls, upstream = OpenAICompatibleProvider, compatible_upstream
        else:
            raise ValueError(kind)
        fields.setdefault("base_url", upstream.base_url)
        config = ProviderConfig(type=kind, transport=transport, options=options, **fields)  # type: ignore[arg-type]
        provider = cls(name=name or kind, config=config)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def upstreams(
    openai_upstream: OpenAIMock, anthropic_upstream: AnthropicMock, compatible_upstream: OpenAIMock
) -> dict[str, Any]:
    return {
        "openai": openai_upstream,
        "anthropic": anthropic_upstream,
        "openai_compatible": compatible_upstream,
    }
