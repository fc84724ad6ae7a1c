"""providers: the plugin system and the built-in LLM providers."""

from providers.hookspecs import hookimpl
from providers.provider_config import ProviderConfig

__all__ = ["ProviderConfig", "hookimpl"]
