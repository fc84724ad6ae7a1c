"""The `openai_compatible` provider: any OpenAI-style server, several named instances."""

from __future__ import annotations

from typing import Any

import pytest

from agent_core import NotConfiguredError, ReasoningAgent
from providers.builtin.openai_compatible import OpenAICompatibleProvider
from providers.provider_config import ProviderConfig
from tests.mock_upstreams import OpenAIMock
from tests.providers.upstream_helpers import OPENAI_KEY, TRANSPORTS, ask

both = pytest.mark.parametrize("transport", TRANSPORTS)


def test_a_base_url_is_required(keys: None) -> None:
    with pytest.raises(NotConfiguredError, match="'ollama' needs a base_url"):
        OpenAICompatibleProvider(name="ollama", config=ProviderConfig(type="openai_compatible"))


def test_openai_base_url_is_not_borrowed(keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(NotConfiguredError, match="needs a base_url"):
        OpenAICompatibleProvider(config=ProviderConfig(type="openai_compatible"))


@both
async def test_it_answers_through_an_openai_style_server_under_its_own_name(
    make_provider: Any, compatible_upstream: OpenAIMock, transport: str
) -> None:
    provider = make_provider("openai_compatible", transport, name="ollama", model="llama3.2")
    completion = await provider.complete(ask())
    assert (provider.name, completion.provider) == ("ollama", "ollama")
    assert completion.model == "llama3.2-2024-07-18"
    assert compatible_upstream.requests[-1].path == "/v1/chat/completions"


@both
async def test_without_a_key_no_authorization_and_never_openais_key_is_sent(
    make_provider: Any, compatible_upstream: OpenAIMock, transport: str
) -> None:
    # OPENAI_API_KEY is set (the `keys` fixture): it must not travel to another server.
    await make_provider("openai_compatible", transport, name="local").complete(ask())
    sent = compatible_upstream.requests[-1].headers
    assert OPENAI_KEY not in sent.get("authorization", "")


@both
async def test_a_configured_key_variable_is_sent_as_a_bearer_token(
    make_provider: Any,
    compatible_upstream: OpenAIMock,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk_groqtestkey0123456789")
    provider = make_provider(
        "openai_compatible", transport, name="groq", api_key_env="GROQ_API_KEY"
    )
    await provider.complete(ask())
    sent = compatible_upstream.requests[-1].headers["authorization"]
    assert sent == "Bearer gsk_groqtestkey0123456789"


def test_a_configured_key_variable_that_is_unset_is_named(
    keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(NotConfiguredError, match="GROQ_API_KEY is not set"):
        OpenAICompatibleProvider(
            name="groq",
            config=ProviderConfig(
                type="openai_compatible",
                base_url="http://127.0.0.1:9/v1",
                api_key_env="GROQ_API_KEY",
            ),
        )


@both
async def test_max_tokens_uses_the_classic_field_compatible_servers_know(
    make_provider: Any, compatible_upstream: OpenAIMock, transport: str
) -> None:
    await make_provider("openai_compatible", transport).complete(ask(max_tokens=5))
    body = compatible_upstream.requests[-1].json
    assert body["max_tokens"] == 5 and "max_completion_tokens" not in body


@both
async def test_self_consistency_works_through_a_compatible_server(
    make_provider: Any, transport: str
) -> None:
    provider = make_provider("openai_compatible", transport, name="vllm")
    answer = await ReasoningAgent(provider).ask("7", strategy="self_consistency", samples=3)
    assert answer.provider == "vllm"
