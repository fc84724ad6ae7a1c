"""The `openai` provider: credentials, configuration, the request it sends, `n` samples."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from agent_core import CompletionRequest, Message, NotConfiguredError
from providers.builtin.openai import OpenAIProvider, split_usage
from providers.provider_config import ProviderConfig, Transport
from tests.mock_upstreams import Fault, OpenAIMock
from tests.providers.upstream_helpers import OPENAI_KEY, TRANSPORTS, ask

both = pytest.mark.parametrize("transport", TRANSPORTS)


def test_without_its_key_the_provider_is_not_configured_and_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(NotConfiguredError, match="OPENAI_API_KEY is not set"):
        OpenAIProvider(name="openai", config=ProviderConfig(type="openai"))


def test_a_configured_key_variable_replaces_openai_api_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.delenv("TEAM_OPENAI_KEY", raising=False)
    with pytest.raises(NotConfiguredError, match="TEAM_OPENAI_KEY is not set"):
        OpenAIProvider(config=ProviderConfig(type="openai", api_key_env="TEAM_OPENAI_KEY"))


@both
async def test_the_key_is_read_when_the_provider_is_built_not_per_call(
    make_provider: Any,
    openai_upstream: OpenAIMock,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
) -> None:
    provider = make_provider("openai", transport)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-changed-later-0000000000")
    await provider.complete(ask())
    assert openai_upstream.requests[-1].headers["authorization"] == f"Bearer {OPENAI_KEY}"


@both
async def test_openai_base_url_from_the_environment_is_honoured(
    make_provider: Any,
    openai_upstream: OpenAIMock,
    monkeypatch: pytest.MonkeyPatch,
    transport: Transport,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_upstream.base_url)
    provider = OpenAIProvider(config=ProviderConfig(type="openai", transport=transport))
    try:
        await provider.complete(ask())
    finally:
        await provider.aclose()
    assert openai_upstream.calls == 1


def test_the_public_api_is_the_default_base_url(keys: None) -> None:
    assert OpenAIProvider().base_url == "https://api.openai.com/v1"


def test_a_base_url_that_is_not_http_is_a_configuration_error(keys: None) -> None:
    with pytest.raises(NotConfiguredError, match="http:// or https://"):
        OpenAIProvider(config=ProviderConfig(type="openai", base_url="localhost:8080"))


@both
async def test_the_request_names_the_configured_default_model(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    completion = await make_provider("openai", transport, model="gpt-4.1").complete(ask())
    assert openai_upstream.requests[-1].json["model"] == "gpt-4.1"
    assert completion.model == "gpt-4.1-2024-07-18"  # what the upstream reports


@both
async def test_a_model_in_the_request_wins_over_the_default(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    await make_provider("openai", transport, model="gpt-4.1").complete(ask(model="o4-mini"))
    assert openai_upstream.requests[-1].json["model"] == "o4-mini"


@both
async def test_messages_and_options_map_onto_the_chat_completions_body(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    request = CompletionRequest(
        [Message("system", "Be terse."), Message("user", "Hi")],
        temperature=0.2,
        max_tokens=9,
        stop=["END"],
        extra={"seed": 7},
    )
    await make_provider("openai", transport).complete(request)
    assert openai_upstream.requests[-1].json == {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "max_completion_tokens": 9,
        "stop": ["END"],
        "seed": 7,
    }


@both
async def test_usage_comes_from_the_upstreams_answer(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    openai_upstream.enqueue(Fault.reply("4", usage=(123, 45)))
    completion = await make_provider("openai", transport).complete(ask())
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (123, 45)
    assert completion.provider == "openai"


@both
async def test_organization_and_project_headers_are_sent_when_configured(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    provider = make_provider(
        "openai", transport, organization="org-abc", options={"project": "proj_1"}
    )
    await provider.complete(ask())
    headers = openai_upstream.requests[-1].headers
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-abc", "proj_1")


@both
async def test_complete_many_asks_once_with_n_and_returns_n_samples(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    samples = await make_provider("openai", transport).complete_many(ask(), 4)
    assert [s.text for s in samples] == ["What is 2 + 2?"] * 4
    assert openai_upstream.calls == 1
    assert openai_upstream.requests[-1].json["n"] == 4


@both
async def test_samples_share_the_calls_usage_so_they_add_up_to_it(
    make_provider: Any, openai_upstream: OpenAIMock, transport: str
) -> None:
    openai_upstream.enqueue(Fault.reply("4", usage=(10, 7)))
    samples = await make_provider("openai", transport).complete_many(ask(), 3)
    assert sum(s.usage.prompt_tokens for s in samples) == 10
    assert sum(s.usage.completion_tokens for s in samples) == 7


def test_split_usage_gives_the_remainder_to_the_first_sample() -> None:
    usages = split_usage(10, 7, 3)
    assert [(u.prompt_tokens, u.completion_tokens) for u in usages] == [(4, 3), (3, 2), (3, 2)]


def test_openai_declares_multiple_samples(make_provider: Any) -> None:
    assert make_provider("openai").capabilities.multiple_samples


def test_importing_the_builtin_providers_does_not_import_the_sdks() -> None:
    code = (
        "import sys, providers.builtin.openai, providers.builtin.anthropic, "
        "providers.builtin.openai_compatible, providers.builtin.echo; "
        "print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
