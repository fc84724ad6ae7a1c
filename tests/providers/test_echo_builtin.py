"""The built-in `echo` plugin: agent_core's EchoProvider with the plugin constructor."""

from __future__ import annotations

from agent_core import CompletionRequest, Message
from providers.builtin.echo import Echo
from providers.provider_config import ProviderConfig


async def test_echo_is_built_from_a_name_and_a_config() -> None:
    echo = Echo(name="offline", config=ProviderConfig(type="echo", model="echo-2"))
    completion = await echo.complete(CompletionRequest([Message("user", "hi there")]))
    assert (completion.text, completion.model, completion.provider) == (
        "hi there",
        "echo-2",
        "offline",
    )


def test_echo_takes_its_latency_from_the_options() -> None:
    echo = Echo(name="echo", config=ProviderConfig(type="echo", options={"latency": 0.25}))
    assert echo.latency == 0.25


def test_echo_needs_no_configuration() -> None:
    assert Echo().name == "echo"


async def test_echo_streams_word_by_word_with_its_configured_latency() -> None:
    import time

    echo = Echo(name="offline", config=ProviderConfig(type="echo", options={"latency": 0.2}))
    assert echo.capabilities.streaming
    started = time.perf_counter()
    items = [item async for item in echo.stream(CompletionRequest([Message("user", "hi there")]))]
    assert 0.19 <= time.perf_counter() - started < 0.4
    assert items[:2] == ["hi", " there"]
    assert items[2] == await Echo(name="offline").complete(
        CompletionRequest([Message("user", "hi there")])
    )
