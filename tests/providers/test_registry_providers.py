"""The provider registry: which providers exist, their status, and what `get` hands out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from agent_core import InvalidRequestError, NotConfiguredError, ReasoningAgent
from providers import ProvidersSettings, load_registry
from providers.builtin.openai import OpenAIProvider
from tests.mock_upstreams import OpenAIMock
from tests.providers.plugin_helpers import isolate, plugin_source, simple_plugin
from tests.providers.upstream_helpers import OPENAI_KEY


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "site"
    monkeypatch.syspath_prepend(str(path))
    return path


def settings(**values: Any) -> ProvidersSettings:
    return ProvidersSettings.isolated(**values)


def test_the_builtins_exist_without_any_configuration() -> None:
    names = load_registry(settings()).names()
    assert {"echo", "openai", "anthropic", "openai_compatible"} <= set(names)


def test_openai_is_the_default_provider() -> None:
    assert load_registry(settings()).default_name == "openai"


def test_a_provider_without_its_key_is_listed_with_the_variable_name() -> None:
    status = load_registry(settings()).status("openai")
    assert (status.status, status.reason) == ("missing_credentials", "OPENAI_API_KEY is not set")


def test_a_request_for_a_provider_without_its_key_gets_not_configured() -> None:
    registry = load_registry(settings())
    with pytest.raises(NotConfiguredError) as error:
        registry.get("anthropic")
    assert error.value.message == (
        "provider 'anthropic' is not configured: ANTHROPIC_API_KEY is not set"
    )


def test_a_provider_with_its_key_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    status = load_registry(settings()).status("openai")
    assert (status.status, status.reason) == ("available", None)
    assert status.default_model == OpenAIProvider.DEFAULT_MODEL


def test_get_without_a_name_returns_the_default_provider() -> None:
    registry = load_registry(settings(default_provider="echo"))
    assert registry.get() is registry.get("echo")


def test_an_unknown_name_is_an_invalid_request_that_lists_the_known_names() -> None:
    registry = load_registry(settings())
    with pytest.raises(InvalidRequestError) as error:
        registry.get("gpt5")
    assert error.value.message.startswith("unknown provider 'gpt5'; known providers: anthropic, ")
    assert "echo" in error.value.message


def test_an_alias_resolves_to_its_provider(site: Path) -> None:
    simple_plugin(site, "aliased", plugin_source('register(Fixed, name="fixed", aliases=["fx"])'))
    registry = load_registry(settings())
    assert registry.get("fx") is registry.get("fixed")
    assert registry.status("fixed").aliases == ("fx",)


def test_the_default_provider_may_be_named_by_an_alias(site: Path) -> None:
    simple_plugin(site, "aliased", plugin_source('register(Fixed, name="fixed", aliases=["fx"])'))
    assert load_registry(settings(default_provider="fx")).default_name == "fixed"


def test_providers_are_created_once_per_registry() -> None:
    registry = load_registry(settings())
    assert registry.get("echo") is registry.get("echo")


async def test_configuration_creates_several_named_instances_of_one_type() -> None:
    registry = load_registry(
        settings(
            providers={
                "small": {"type": "echo", "model": "echo-small"},
                "large": {"type": "echo", "model": "echo-large"},
            }
        )
    )
    small = await ReasoningAgent(registry.get("small")).ask("hi")
    large = await ReasoningAgent(registry.get("large")).ask("hi")
    assert [(a.provider, a.model) for a in (small, large)] == [
        ("small", "echo-small"),
        ("large", "echo-large"),
    ]
    assert registry.status("large").type == "echo"


def test_a_disabled_provider_is_listed_and_refused() -> None:
    registry = load_registry(settings(providers={"anthropic": {"enabled": False}}))
    assert registry.status("anthropic").status == "disabled"
    with pytest.raises(NotConfiguredError, match="enabled = false"):
        registry.get("anthropic")


def test_a_constructor_that_crashes_marks_only_that_provider_failed(site: Path) -> None:
    body = """
class Crashing(Fixed):
    def __init__(self, *, name, config):
        raise KeyError("oops")
"""
    simple_plugin(site, "crashy", plugin_source('register(Crashing, name="crashing")', body=body))
    registry = load_registry(settings())
    status = registry.status("crashing")
    assert (status.status, status.reason) == ("failed", "could not be created: KeyError: 'oops'")
    assert registry.status("echo").status == "available"


def test_each_instance_takes_its_configured_name(site: Path) -> None:
    body = """
class Stubborn(Fixed):
    def __init__(self, *, name, config):
        self.name = "always-this"
"""
    simple_plugin(site, "stubborn", plugin_source('register(Stubborn, name="stubborn")', body=body))
    registry = load_registry(settings(providers={"mine": {"type": "stubborn"}}))
    assert registry.get("mine").name == "mine"


async def test_aclose_closes_every_provider_once(site: Path) -> None:
    module = simple_plugin(site, "closing", plugin_source('register(Fixed, name="fixed")'))
    registry = load_registry(
        settings(providers={"one": {"type": "fixed"}, "two": {"type": "fixed"}})
    )
    await registry.aclose()
    assert sys.modules[module].Fixed.closed == 3  # "fixed", "one" and "two"


async def test_an_openai_compatible_instance_answers_through_its_server(
    openai_upstream: OpenAIMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_LLM_KEY", OPENAI_KEY)
    table = {
        "type": "openai_compatible",
        "base_url": openai_upstream.base_url,
        "api_key_env": "LOCAL_LLM_KEY",
        "model": "local-model",
    }
    registry = load_registry(settings(providers={"local": table}))
    try:
        answer = await ReasoningAgent(registry.get("local")).ask("ping")
    finally:
        await registry.aclose()
    assert (answer.text, answer.provider) == ("ping", "local")
    assert openai_upstream.requests[0].json["model"] == "local-model"


def test_default_model_reports_the_configured_model() -> None:
    registry = load_registry(settings(providers={"echo": {"model": "echo-9"}}))
    assert registry.default_model("echo") == "echo-9"


def test_statuses_serialise_to_plain_dicts() -> None:
    status = load_registry(settings()).status("echo")
    assert status.as_dict() == {
        "name": "echo",
        "type": "echo",
        "status": "available",
        "reason": None,
        "default_model": "echo-1",
        "aliases": [],
        "plugin": "echo",
    }


def test_a_provider_without_its_key_still_shows_the_model_it_would_use() -> None:
    status = load_registry(settings()).status("openai")
    assert (status.status, status.default_model) == (
        "missing_credentials",
        OpenAIProvider.DEFAULT_MODEL,
    )
