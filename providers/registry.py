"""The provider registry: every configured provider, created once, with its status.

`load_registry()` reads the configuration, loads the plugins, asks each plugin to register its
provider classes, and creates one instance per provider for the life of the process:

- each registered provider name gets an instance of that name, unless a `[providers.NAME]`
  table configures it (so `echo`, `openai` and `anthropic` exist without any plugins.toml);
- each `[providers.NAME]` table creates an instance of its `type` (default: NAME), so one type
  can serve several instances (`[providers.ollama] type = "openai_compatible"`).

A provider whose credentials are missing, whose plugin failed to load, or that configuration
disabled is listed with that status and reason; asking for it raises
`agent_core.NotConfiguredError` with the reason, while the other providers keep serving.
Two plugins registering one name make that name unusable (listed as failed, with the fix)
until `[plugins] choose` picks one; strict plugin loading makes it an error at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import agent_core
from agent_core import InvalidRequestError, NotConfiguredError, Provider
from providers.config import (
    NAME_RULE,
    ConfigError,
    ProvidersSettings,
    load_settings,
    valid_name,
    where_key_comes_from,
)
from providers.fallback import FallbackProvider
from providers.manager import (
    PluginLoadError,
    PluginManager,
    build_plugin_manager,
    describe_exception,
)
from providers.provider_config import ProviderConfig

__all__ = ["ProviderRegistry", "ProviderStatus", "Registration", "load_registry"]

log = logging.getLogger("providers.registry")

Status = Literal["available", "missing_credentials", "failed", "disabled"]


@dataclass(frozen=True)
class ProviderStatus:
    """One provider as `reasoning-agent providers` and the API list it."""

    name: str
    type: str
    status: Status
    reason: str | None
    default_model: str | None
    aliases: tuple[str, ...]
    plugin: str | None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "aliases": list(self.aliases)}


@dataclass(frozen=True)
class Registration:
    """A provider class as a plugin registered it."""

    provider_class: type[Provider]
    name: str
    aliases: tuple[str, ...]
    plugin: str


@dataclass
class _Entry:
    """A provider instance, or the reason there is none."""

    status: ProviderStatus
    provider: Provider | None = None
    config: ProviderConfig | None = None


@dataclass
class _Registrations:
    by_name: dict[str, list[Registration]] = field(default_factory=dict)

    def add(self, registration: Registration) -> None:
        self.by_name.setdefault(registration.name, []).append(registration)


class ProviderRegistry:
    """The providers of one process. Create it once (`load_registry()`), close it at exit."""

    def __init__(
        self,
        entries: dict[str, _Entry],
        aliases: dict[str, str],
        chains: dict[str, FallbackProvider],
        default_name: str,
        settings: ProvidersSettings,
        plugin_manager: PluginManager,
    ) -> None:
        self._entries = entries
        self._aliases = aliases
        self._chains = chains
        self.default_name = default_name
        self.settings = settings
        self.plugin_manager = plugin_manager

    def names(self) -> list[str]:
        """Every provider name: configured, registered, failed or disabled (aliases excluded)."""
        return list(self._entries)

    def statuses(self) -> list[ProviderStatus]:
        return [entry.status for entry in self._entries.values()]

    def status(self, name: str | None = None) -> ProviderStatus:
        """The status of one provider (by name or alias; `None` is the default provider)."""
        return self._entries[self.resolve(name)].status

    def resolve(self, name: str | None = None) -> str:
        """The provider name that `name` (or an alias; `None`: the default) stands for.

        :raises agent_core.InvalidRequestError: no provider has that name or alias.
        """
        if name is None:
            return self.default_name
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = ", ".join(self.names())
        raise InvalidRequestError(f"unknown provider {name!r}; known providers: {known}")

    def get(self, name: str | None = None) -> Provider:
        """The provider to serve a request, wrapped in its fallback chain when one is set.

        :raises agent_core.InvalidRequestError: unknown name (the message lists known names).
        :raises agent_core.NotConfiguredError: the provider cannot serve (and has no fallback
            chain): the message gives the reason, e.g. the missing variable.
        """
        resolved = self.resolve(name)
        chain = self._chains.get(resolved)
        if chain is not None:
            return chain
        entry = self._entries[resolved]
        if entry.provider is None:
            raise NotConfiguredError(_not_configured(entry.status))
        return entry.provider

    def default_model(self, name: str | None = None) -> str | None:
        """The model a request to `name` gets when it names none (None: the provider decides)."""
        return self._entries[self.resolve(name)].status.default_model

    async def aclose(self) -> None:
        """Closes every provider's clients (each once; errors are logged, not raised)."""
        for name, entry in self._entries.items():
            if entry.provider is None:
                continue
            try:
                await entry.provider.aclose()
            except Exception as error:
                log.warning("closing provider %r: %s", name, describe_exception(error))


def _not_configured(status: ProviderStatus) -> str:
    what = "is not configured" if status.status == "missing_credentials" else "is unavailable"
    return f"provider {status.name!r} {what}: {status.reason}"


# --- building the registry ---------------------------------------------------------------------


def load_registry(
    settings: ProvidersSettings | None = None, *, strict: bool | None = None
) -> ProviderRegistry:
    """Reads the configuration (unless given), loads the plugins and creates the providers.

    :param strict: overrides ``[plugins] strict``: any plugin failure or duplicate name raises.
    :raises ConfigError: the configuration names an unknown provider, type or plugin.
    :raises PluginLoadError: strict mode and a plugin failed, or two plugins claim one name.
    """
    settings = settings if settings is not None else load_settings()
    strict = settings.plugins.strict if strict is None else strict
    pm = build_plugin_manager(
        enabled=settings.plugins.enabled, disabled=settings.plugins.disabled, strict=strict
    )
    registrations = _collect_registrations(pm, strict)
    types, type_failures = _resolve_types(registrations, settings, strict)
    failed_plugins = {failure.plugin: failure.reason for failure in pm.failures}
    disabled_plugins = set(pm.disabled_plugins)
    entries: dict[str, _Entry] = {}
    for name, config in _instance_configs(settings, types, type_failures).items():
        entries[name] = _create(
            name,
            config,
            types,
            type_failures,
            failed_plugins,
            disabled_plugins,
            settings.source,
            strict,
        )
    # Plugins that never got to register anything are listed under their own name.
    for plugin, reason in failed_plugins.items():
        if plugin not in entries:
            entries[plugin] = _Entry(
                ProviderStatus(plugin, plugin, "failed", reason, None, (), plugin)
            )
    for plugin in disabled_plugins:
        if plugin not in entries:
            entries[plugin] = _Entry(
                ProviderStatus(
                    plugin, plugin, "disabled", "plugin disabled in [plugins]", None, (), plugin
                )
            )

    aliases = _aliases(types, entries, strict)
    for name, entry in entries.items():  # list only the aliases that really lead here
        effective = tuple(alias for alias in entry.status.aliases if aliases.get(alias) == name)
        entry.status = replace(entry.status, aliases=effective)
    entries = dict(sorted(entries.items()))
    default_name = _default_name(settings, entries, aliases)
    chains = _chains(settings, entries, aliases)
    return ProviderRegistry(entries, aliases, chains, default_name, settings, pm)


def _collect_registrations(pm: PluginManager, strict: bool) -> _Registrations:
    """Calls each plugin's `register_providers` on its own, so one failing plugin is skipped
    (with its partial registrations) instead of aborting the others' hook calls."""
    found = _Registrations()
    for impl in pm.hook.register_providers.get_hookimpls():
        plugin = impl.plugin_name
        mine: list[Registration] = []

        def register(
            provider_class: type[Provider],
            *,
            name: str,
            aliases: Sequence[str] = (),
            _plugin: str = plugin,
            _mine: list[Registration] = mine,
        ) -> None:
            _mine.append(_checked(provider_class, name, aliases, _plugin, _mine))

        try:
            impl.function(register=register)
        except Exception as error:
            reason = f"register_providers failed: {describe_exception(error)}"
            if strict:
                raise PluginLoadError(f"plugin {plugin!r} {reason}") from None
            pm.record_failure(plugin, reason)
            continue
        for registration in mine:
            found.add(registration)
    return found


def _checked(
    provider_class: object,
    name: object,
    aliases: object,
    plugin: str,
    earlier: list[Registration],
) -> Registration:
    if not (isinstance(provider_class, type) and issubclass(provider_class, Provider)):
        raise TypeError(f"{provider_class!r} is not a subclass of agent_core.Provider")
    if not isinstance(name, str) or not valid_name(name):
        raise ValueError(f"provider name {name!r} is not valid ({NAME_RULE})")
    if isinstance(aliases, str) or not isinstance(aliases, Iterable):
        raise ValueError(f"aliases of {name!r} must be a list of names, got {aliases!r}")
    alias_list = list(aliases)
    if not all(isinstance(alias, str) and valid_name(alias) for alias in alias_list):
        raise ValueError(f"aliases of {name!r} must be valid names ({NAME_RULE}): {alias_list!r}")
    names: set[str] = {name, *alias_list}
    for other in earlier:
        clash = names & {other.name, *other.aliases}
        if clash:
            raise ValueError(f"registers {', '.join(sorted(clash))!r} twice")
    return Registration(provider_class, name, tuple(alias_list), plugin)


def _resolve_types(
    registrations: _Registrations, settings: ProvidersSettings, strict: bool
) -> tuple[dict[str, Registration], dict[str, str]]:
    """One registration per name; a name claimed by several plugins is resolved by
    `[plugins] choose`, or else unusable (strict: an error)."""
    where = settings.describe_source()
    choose = settings.plugins.choose
    for name in choose:
        if name not in registrations.by_name:
            raise ConfigError(
                f"{where}: plugins.choose.{name}: no plugin registers a provider named {name!r}"
            )
    types: dict[str, Registration] = {}
    failures: dict[str, str] = {}
    for name, candidates in registrations.by_name.items():
        plugins = [candidate.plugin for candidate in candidates]
        if name in choose:
            chosen = [c for c in candidates if c.plugin == choose[name]]
            if not chosen:
                raise ConfigError(
                    f"{where}: plugins.choose.{name}: plugin {choose[name]!r} does not register "
                    f"{name!r}; it is registered by {', '.join(plugins)}"
                )
            types[name] = chosen[0]
        elif len(candidates) == 1:
            types[name] = candidates[0]
        else:
            reason = (
                f"registered by several plugins ({', '.join(plugins)}); pick one in "
                f'plugins.toml: [plugins.choose] {name} = "{plugins[0]}"'
            )
            if strict:
                raise PluginLoadError(f"provider {name!r} is {reason}")
            log.warning("provider %r is %s", name, reason)
            failures[name] = reason
    return types, failures


def _instance_configs(
    settings: ProvidersSettings, types: dict[str, Registration], type_failures: dict[str, str]
) -> dict[str, ProviderConfig]:
    """Configured instances first, then one default instance per registered name."""
    configs = dict(settings.providers)
    for name in [*types, *type_failures]:
        configs.setdefault(name, ProviderConfig(type=name))
    default = settings.default_provider
    if settings.default_model and default in configs and configs[default].model is None:
        configs[default] = configs[default].model_copy(update={"model": settings.default_model})
    return configs


def _create(
    name: str,
    config: ProviderConfig,
    types: dict[str, Registration],
    type_failures: dict[str, str],
    failed_plugins: dict[str, str],
    disabled_plugins: set[str],
    source: Path | None,
    strict: bool,
) -> _Entry:
    registration = types.get(config.type)
    plugin = registration.plugin if registration else None
    aliases = registration.aliases if registration and name == config.type else ()

    def status(state: Status, reason: str | None, model: str | None = None) -> ProviderStatus:
        # An unavailable provider still shows the model it would use (config, else class).
        if model is None and registration is not None:
            model = config.model or _model_of(registration.provider_class)
        return ProviderStatus(
            name, config.type, state, reason, model or config.model, aliases, plugin
        )

    if registration is None:
        if config.type in type_failures:
            return _Entry(status("failed", type_failures[config.type]), config=config)
        if config.type in failed_plugins:
            reason = f"plugin {config.type!r} {failed_plugins[config.type]}"
            return _Entry(status("failed", reason), config=config)
        if config.type in disabled_plugins:
            reason = f"plugin {config.type!r} is disabled in [plugins]"
            return _Entry(status("disabled", reason), config=config)
        where = where_key_comes_from(["providers", name, "type"], source)
        raise ConfigError(f"{where}: providers.{name}.type: {_unknown_type(config.type, types)}")
    if not config.enabled:
        reason = f"disabled in configuration ([providers.{name}] enabled = false)"
        return _Entry(status("disabled", reason), config=config)
    try:
        provider = registration.provider_class(name=name, config=config)
    except NotConfiguredError as error:
        return _Entry(status("missing_credentials", error.message), config=config)
    except Exception as error:
        reason = f"could not be created: {describe_exception(error)}"
        if strict:
            raise PluginLoadError(f"provider {name!r} {reason}") from None
        log.warning("provider %r %s", name, reason)
        return _Entry(status("failed", reason), config=config)
    if not isinstance(provider, Provider):
        reason = f"{registration.provider_class.__name__}(...) did not return a Provider"
        return _Entry(status("failed", reason), config=config)
    _name_instance(provider, name)
    return _Entry(status("available", None, _model_of(provider)), provider, config)


def _unknown_type(type_name: str, types: dict[str, Registration]) -> str:
    known = ", ".join(sorted(types)) or "none"
    return f"unknown provider type {type_name!r}; registered types: {known}"


def _name_instance(provider: Provider, name: str) -> None:
    """The configured name is the instance's name (it is what completions record)."""
    if getattr(provider, "name", None) != name:
        try:
            provider.name = name
        except AttributeError:
            log.warning("provider %r cannot take its configured name %r", provider, name)


def _model_of(provider: Provider | type[Provider]) -> str | None:
    """The provider's default model: `default_model` or `model` (instance), or the class's
    `default_model` / `DEFAULT_MODEL` (for a provider that could not be created)."""
    for attribute in ("default_model", "model", "DEFAULT_MODEL"):
        value = getattr(provider, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


def _aliases(
    types: dict[str, Registration], entries: dict[str, _Entry], strict: bool
) -> dict[str, str]:
    """Alias -> provider name. Provider names win over aliases; colliding aliases are dropped."""
    aliases: dict[str, str] = {}
    for name, registration in types.items():
        if name not in entries:
            continue
        for alias in registration.aliases:
            owner = alias if alias in entries else aliases.get(alias)
            if owner is not None:
                message = (
                    f"alias {alias!r} of provider {name!r} (plugin {registration.plugin!r}) "
                    f"is already the name of {owner!r}"
                )
                if strict:
                    raise PluginLoadError(message)
                log.warning("%s; alias ignored", message)
                continue
            aliases[alias] = name
    return aliases


def _lookup(name: str, entries: dict[str, _Entry], aliases: dict[str, str]) -> str | None:
    if name in entries:
        return name
    return aliases.get(name)


def _default_name(
    settings: ProvidersSettings, entries: dict[str, _Entry], aliases: dict[str, str]
) -> str:
    resolved = _lookup(settings.default_provider, entries, aliases)
    if resolved is None:
        raise ConfigError(
            f"{_where('default_provider', settings)}: default_provider: unknown provider "
            f"{settings.default_provider!r}; known providers: {', '.join(entries)}"
        )
    return resolved


def _chains(
    settings: ProvidersSettings, entries: dict[str, _Entry], aliases: dict[str, str]
) -> dict[str, FallbackProvider]:
    chains: dict[str, FallbackProvider] = {}
    for head, tail in settings.fallback.items():
        members: list[str] = []
        for position, member in enumerate([head, *tail]):
            resolved = _lookup(member, entries, aliases)
            key = f"fallback.{head}" if position == 0 else f"fallback.{head}[{position - 1}]"
            if resolved is None:
                raise ConfigError(
                    f"{_where_fallback(head, settings)}: {key}: unknown provider {member!r}; "
                    f"known providers: {', '.join(entries)}"
                )
            if resolved in members:
                raise ConfigError(
                    f"{_where_fallback(head, settings)}: {key}: {member!r} is already in the chain"
                )
            members.append(resolved)
        chains[members[0]] = FallbackProvider(
            [_member(name, entries[name]) for name in members], name=members[0]
        )
    return chains


def _member(name: str, entry: _Entry) -> Provider:
    if entry.provider is not None:
        return entry.provider
    return _Unavailable(name, _not_configured(entry.status))


class _Unavailable(Provider):
    """A chain member that cannot serve: raises its reason, so the chain moves on."""

    capabilities = agent_core.Capabilities()

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    async def complete(self, request: agent_core.CompletionRequest) -> agent_core.Completion:
        raise NotConfiguredError(self.reason)


def _where(key: str, settings: ProvidersSettings) -> str:
    return where_key_comes_from([key], settings.source)


def _where_fallback(head: str, settings: ProvidersSettings) -> str:
    return where_key_comes_from(["fallback", head], settings.source)
