"""Tests of the calculator plugin, through ReasoningAgent's own plugin loading.

Run with `pytest examples/plugin-example/tests` once the package is installed.
"""

from __future__ import annotations

from typing import Any

import pytest
from reasoning_agent_calculator import CalculatorProvider

from agent_core import InvalidRequestError, ReasoningAgent
from providers import ProviderConfig, ProvidersSettings, load_registry


def settings(**values: Any) -> ProvidersSettings:
    """Exactly these settings: neither plugins.toml nor the environment is read."""
    return ProvidersSettings.isolated(default_provider="calculator", **values)


def test_the_installed_plugin_is_discovered_and_available() -> None:
    status = load_registry(settings()).status("calculator")
    assert (status.status, status.plugin, status.aliases) == ("available", "calculator", ("calc",))


async def test_it_answers_a_task_through_the_agent() -> None:
    provider = load_registry(settings()).get("calc")
    answer = await ReasoningAgent(provider).ask("What is 2 + 3 * 4?", strategy="cot")
    assert answer.text == "14"


async def test_non_integer_results_use_the_configured_precision() -> None:
    config = ProviderConfig(type="calculator", options={"precision": 2})
    provider = CalculatorProvider(name="calculator", config=config)
    answer = await ReasoningAgent(provider).ask("10 / 3", strategy="cot")
    assert answer.text == "3.33"


async def test_a_prompt_without_arithmetic_is_an_invalid_request() -> None:
    provider = load_registry(settings()).get("calculator")
    with pytest.raises(InvalidRequestError, match="no arithmetic expression"):
        await ReasoningAgent(provider).ask("Tell me a story")


def test_a_required_token_that_is_missing_is_reported_by_name() -> None:
    table = {"type": "calculator", "api_key_env": "CALCULATOR_TEST_TOKEN_UNSET"}
    registry = load_registry(settings(providers={"locked": table}))
    status = registry.status("locked")
    assert (status.status, status.reason) == (
        "missing_credentials",
        "CALCULATOR_TEST_TOKEN_UNSET is not set",
    )
