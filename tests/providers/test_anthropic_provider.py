"""The `anthropic` provider: credentials, the Messages body it sends, stop reasons, usage."""

from __future__ import annotations

from typing import Any

import pytest

from agent_core import CompletionRequest, Message, NotConfiguredError
from providers.builtin.anthropic import AnthropicProvider, normalise_stop_reason
from providers.provider_config import ProviderConfig, Transport
from tests.mock_upstreams import AnthropicMock, Fault
from tests.providers.upstream_helpers import ANTHROPIC_KEY, TRANSPORTS, ask

both = pytest.mark.parametrize("transport", TRANSPORTS)


def test_without_its_key_the_provider_is_not_configured_and_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(NotConfiguredError, match="ANTHROPIC_API_KEY is not set"):
        AnthropicProvider(name="anthropic", config=ProviderConfig(type="anthropic"))


def test_the_public_api_is_the_default_base_url(keys: None) -> None:
    assert AnthropicProvider().base_url == "https://api.anthropic.com"


@both
async def test_anthropic_base_url_from_the_environment_is_honoured(
    keys: None,
    anthropic_upstream: AnthropicMock,
    monkeypatch: pytest.MonkeyPatch,
    transport: Transport,
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_upstream.base_url)
    provider = AnthropicProvider(config=ProviderConfig(type="anthropic", transport=transport))
    try:
        await provider.complete(ask())
    finally:
        await provider.aclose()
    assert anthropic_upstream.calls == 1


async def test_the_lean_transport_authenticates_with_x_api_key_and_a_version(
    make_provider: Any, anthropic_upstream: AnthropicMock
) -> None:
    await make_provider("anthropic", "lean").complete(ask())
    headers = anthropic_upstream.requests[-1].headers
    assert (headers["x-api-key"], headers["anthropic-version"]) == (ANTHROPIC_KEY, "2023-06-01")


@both
async def test_system_messages_go_to_the_top_level_system_field(
    make_provider: Any, anthropic_upstream: AnthropicMock, transport: str
) -> None:
    request = CompletionRequest(
        [
            Message("system", "Be terse."),
            Message("system", "Use French."),
            Message("user", "Hi"),
            Message("assistant", "Salut"),
            Message("user", "Encore"),
        ],
        stop=["END"],
        extra={"top_k": 5},
    )
    await make_provider("anthropic", transport).complete(request)
    assert anthropic_upstream.requests[-1].json == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 1024,
        "system": "Be terse.\n\nUse French.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Salut"},
            {"role": "user", "content": "Encore"},
        ],
        "stop_sequences": ["END"],
        "top_k": 5,
    }


@both
async def test_max_tokens_is_always_sent_because_the_api_requires_it(
    make_provider: Any, anthropic_upstream: AnthropicMock, transport: str
) -> None:
    await make_provider("anthropic", transport).complete(ask(max_tokens=64))
    assert anthropic_upstream.requests[-1].json["max_tokens"] == 64


@both
async def test_temperature_is_sent_only_when_the_option_asks_for_it(
    make_provider: Any, anthropic_upstream: AnthropicMock, transport: str
) -> None:
    await make_provider("anthropic", transport).complete(ask(temperature=0.7))
    assert "temperature" not in anthropic_upstream.requests[-1].json
    provider = make_provider("anthropic", transport, options={"send_temperature": True})
    await provider.complete(ask(temperature=0.7))
    assert anthropic_upstream.requests[-1].json["temperature"] == 0.7


@both
async def test_usage_and_model_come_from_the_upstreams_answer(
    make_provider: Any, anthropic_upstream: AnthropicMock, transport: str
) -> None:
    anthropic_upstream.enqueue(Fault.reply("4", usage=(321, 12), model="claude-x-20990101"))
    completion = await make_provider("anthropic", transport).complete(ask())
    assert (completion.text, completion.model) == ("4", "claude-x-20990101")
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (321, 12)


@both
@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
async def test_stop_reasons_are_normalised(
    make_provider: Any,
    anthropic_upstream: AnthropicMock,
    transport: str,
    stop_reason: str,
    finish_reason: str,
) -> None:
    anthropic_upstream.enqueue(Fault.reply("x", finish_reason=stop_reason))
    completion = await make_provider("anthropic", transport).complete(ask())
    assert completion.finish_reason == finish_reason


def test_an_unknown_stop_reason_passes_through() -> None:
    assert normalise_stop_reason("pause_turn") == "pause_turn"


def test_anthropic_takes_one_sample_per_call() -> None:
    assert not AnthropicProvider.capabilities.multiple_samples
