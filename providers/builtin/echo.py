"""The `echo` provider: agent_core's offline, deterministic EchoProvider as a plugin.

Options (`[providers.echo.options]`): `latency`, seconds each answer waits (for load tests).
"""

from __future__ import annotations

from typing import Any

from agent_core import EchoProvider
from providers.builtin_options import EchoOptions, read_options
from providers.hookspecs import RegisterProvider, hookimpl
from providers.provider_config import ProviderConfig


class Echo(EchoProvider):
    """EchoProvider with the plugin constructor, `Echo(name=..., config=...)`."""

    def __new__(cls, *, name: str = "echo", config: ProviderConfig | None = None) -> Echo:
        config = config or ProviderConfig(type="echo")
        latency = read_options(EchoOptions, config.options).latency
        return super().__new__(cls, latency=latency, model=config.model or "echo-1", name=name)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    register(Echo, name="echo")
