"""The plugin contract: the hooks a ReasoningAgent plugin may implement.

Plugins mark implementations with `providers.hookimpl` (re-exported from the `providers`
package, the one documented place to import it from) and are found through the
`reasoning_agent` entry-point group. Hooks are called with keyword arguments only.

Contract version 1. Add hooks only with a reason; never change a released signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pluggy

from agent_core import Provider

PROJECT_NAME = "reasoning_agent"
"""The pluggy project name, which is also the entry-point group."""

CONTRACT_VERSION = 1

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class RegisterProvider(Protocol):
    """The callback handed to `register_providers`."""

    def __call__(
        self, provider_class: type[Provider], *, name: str, aliases: Sequence[str] = ()
    ) -> None: ...


@hookspec
def register_providers(register: RegisterProvider) -> None:
    """Register provider classes by calling `register` once per provider.

    :param register: call it as ``register(ProviderClass, name="mine", aliases=["m"])``.
        ``ProviderClass`` subclasses :class:`agent_core.Provider`; ``name`` is how users and
        ``plugins.toml`` choose it; ``aliases`` are extra names for the same provider.

    The class is instantiated once per configured provider, for the life of the process, as
    ``ProviderClass(name=..., config=...)`` where ``config`` is the provider's
    :class:`providers.provider_config.ProviderConfig`. A constructor that finds its credentials
    missing raises :class:`agent_core.NotConfiguredError` naming the missing variable; the
    provider is then listed as unavailable and the service still starts.

    .. versionadded:: 1
    """
