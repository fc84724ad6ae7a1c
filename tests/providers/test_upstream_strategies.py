"""Every reasoning strategy runs against the OpenAI and Anthropic providers through the mock
upstreams, on both transports; the answer's usage is what the upstream reported."""

from __future__ import annotations

from typing import Any

import pytest

import agent_core
from agent_core import ReasoningAgent
from tests.mock_upstreams import Fault
from tests.providers.upstream_helpers import PROVIDER_KINDS, TRANSPORTS


@pytest.mark.parametrize("strategy", agent_core.strategies())
@pytest.mark.parametrize("kind", PROVIDER_KINDS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_each_strategy_answers_with_the_upstreams_usage(
    make_provider: Any, upstreams: dict[str, Any], strategy: str, kind: str, transport: str
) -> None:
    upstream = upstreams[kind]
    upstream.always = Fault.reply("The answer is 4.", usage=(11, 5))
    answer = await ReasoningAgent(make_provider(kind, transport)).ask(
        "What is 2 + 2?", strategy=strategy, samples=3
    )
    assert answer.text
    assert answer.provider == kind
    assert answer.model is not None and answer.model.endswith(upstream.SNAPSHOT)
    calls = upstream.calls
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11 * calls, 5 * calls)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_self_consistency_on_openai_takes_all_samples_in_one_call_with_n(
    make_provider: Any, upstreams: dict[str, Any], transport: str
) -> None:
    upstream = upstreams["openai"]
    upstream.always = Fault.reply("The answer is 4.")
    answer = await ReasoningAgent(make_provider("openai", transport)).ask(
        "What is 2 + 2?", strategy="self_consistency", samples=5
    )
    assert answer.votes == {"4": 5}
    assert upstream.calls == 1
    assert upstream.requests[-1].json["n"] == 5


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_self_consistency_on_anthropic_makes_one_call_per_sample(
    make_provider: Any, upstreams: dict[str, Any], transport: str
) -> None:
    upstream = upstreams["anthropic"]
    upstream.always = Fault.reply("The answer is 4.")
    answer = await ReasoningAgent(make_provider("anthropic", transport)).ask(
        "What is 2 + 2?", strategy="self_consistency", samples=3
    )
    assert answer.votes == {"4": 3}
    assert upstream.calls == 3
