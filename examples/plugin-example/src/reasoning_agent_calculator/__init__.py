"""reasoning-agent-calculator: an example ReasoningAgent provider plugin.

This module is what the `reasoning_agent` entry point names (see pyproject.toml). ReasoningAgent
imports it at start-up and calls its hooks, so keep it light: import heavy SDKs inside the
provider, when it is created or first used, not here.
"""

from __future__ import annotations

from providers import RegisterProvider, hookimpl
from reasoning_agent_calculator.provider import CalculatorProvider

__all__ = ["CalculatorProvider", "register_providers"]


@hookimpl
def register_providers(register: RegisterProvider) -> None:
    """Registers the `calculator` provider (also reachable as `calc`)."""
    register(CalculatorProvider, name="calculator", aliases=["calc"])
