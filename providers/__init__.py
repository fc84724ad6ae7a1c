"""providers: the plugin system and the built-in LLM providers.

Plugin authors import :data:`hookimpl` from here (the one documented place); the service and
the CLI use :func:`load_registry`. See docs/plugins.md and docs/configuration.md.
"""

from providers.config import ConfigError, ProvidersSettings, load_settings
from providers.fallback import FallbackProvider
from providers.hookspecs import CONTRACT_VERSION, RegisterProvider, hookimpl
from providers.manager import PluginFailure, PluginLoadError, build_plugin_manager
from providers.provider_config import ProviderConfig
from providers.registry import ProviderRegistry, ProviderStatus, load_registry

__all__ = [
    "CONTRACT_VERSION",
    "ConfigError",
    "FallbackProvider",
    "PluginFailure",
    "PluginLoadError",
    "ProviderConfig",
    "ProviderRegistry",
    "ProviderStatus",
    "ProvidersSettings",
    "RegisterProvider",
    "build_plugin_manager",
    "hookimpl",
    "load_registry",
    "load_settings",
]
