"""The plugin manager: finds, loads and checks ReasoningAgent plugins.

Built-in providers and third-party plugins load the same way: each is a module named by an
entry point of the `reasoning_agent` group (the built-ins are declared in our own
pyproject.toml). Unlike pluggy's `load_setuptools_entrypoints`, entry points are loaded one by
one, so a plugin that fails to import is recorded with its reason and skipped while the others
load; `strict` mode turns any such failure into an error at start-up.

Loading a plugin imports only its module. Heavy SDKs (openai, anthropic) are imported by the
built-in providers when a provider is created with `transport = "sdk"`, never here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import pluggy

from providers import hookspecs
from providers.hookspecs import PROJECT_NAME

__all__ = [
    "BUILTIN_PLUGINS",
    "PluginFailure",
    "PluginLoadError",
    "PluginManager",
    "build_plugin_manager",
]

log = logging.getLogger("providers.plugins")

BUILTIN_PLUGINS: dict[str, str] = {
    "echo": "providers.builtin.echo",
    "openai": "providers.builtin.openai",
    "anthropic": "providers.builtin.anthropic",
    "openai_compatible": "providers.builtin.openai_compatible",
}
"""The built-in plugins, as declared in our pyproject.toml's entry points. Used only when the
package's own metadata is absent (running from a source tree that was never installed)."""

MAX_REASON = 300
"""Reasons are cut to this length: they are shown in listings, not meant as logs."""


class PluginLoadError(Exception):
    """Strict mode: a plugin failed to load or register, or two plugins claim one name."""

    code = "plugin_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or could not register its providers."""

    plugin: str
    """The entry-point name."""
    reason: str
    distribution: str | None = None
    """The installed package that declared the entry point, when known."""


def describe_exception(error: BaseException) -> str:
    """`Type: message`, on one line and bounded (a listing is no place for a traceback)."""
    message = " ".join(str(error).split())
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


@dataclass
class _EntryPoint:
    name: str
    value: str
    distribution: str | None
    entry_point: importlib.metadata.EntryPoint | None = None

    def load(self) -> object:
        if self.entry_point is not None:
            return self.entry_point.load()
        return importlib.import_module(self.value)


@dataclass
class _Bookkeeping:
    failures: list[PluginFailure] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    distributions: dict[str, str] = field(default_factory=dict)


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers which plugins failed or were disabled, and why."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self._book = _Bookkeeping()

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that failed to load or register, in discovery order."""
        return list(self._book.failures)

    @property
    def disabled_plugins(self) -> list[str]:
        """Installed plugins that configuration kept from loading."""
        return list(self._book.disabled)

    def distribution_of(self, plugin: str) -> str | None:
        """The installed package that provides `plugin`, when known."""
        return self._book.distributions.get(plugin)

    def record_failure(self, plugin: str, reason: str) -> None:
        """Records a plugin failure found after loading (e.g. while registering providers)."""
        failure = PluginFailure(plugin, reason, self.distribution_of(plugin))
        self._book.failures.append(failure)
        log.warning("plugin %r skipped: %s", plugin, reason)


def _discover(group: str) -> list[_EntryPoint]:
    """Every entry point of `group`, once each, in a stable order.

    A distribution seen twice on sys.path (an editable install plus a stale copy) declares the
    same entry point twice: identical name and value count once.
    """
    found: dict[tuple[str, str], _EntryPoint] = {}
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"] if dist.metadata else None
        for ep in dist.entry_points.select(group=group):
            found.setdefault((ep.name, ep.value), _EntryPoint(ep.name, ep.value, dist_name, ep))
    present = {name for name, _ in found}
    for name, module in BUILTIN_PLUGINS.items():
        if name not in present:
            found[(name, module)] = _EntryPoint(name, module, None)
    return sorted(found.values(), key=lambda ep: (ep.name, ep.value))


def build_plugin_manager(
    *,
    enabled: Collection[str] | None = None,
    disabled: Collection[str] = (),
    strict: bool = False,
    extra_plugins: Iterable[tuple[str, object]] = (),
    group: str = PROJECT_NAME,
) -> PluginManager:
    """Builds the plugin manager with every installed plugin loaded.

    :param enabled: when given, only these plugins (entry-point names) are loaded.
    :param disabled: plugins that are never loaded (not even imported).
    :param strict: raise :class:`PluginLoadError` on the first plugin that fails to load,
        instead of recording it in ``failures`` and going on.
    :param extra_plugins: ``(name, plugin)`` pairs registered directly, after the entry points
        (for embedding applications and tests; ``enabled``/``disabled`` apply to them too).
    :param group: the entry-point group (``reasoning_agent``).
    """
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    allowed = None if enabled is None else set(enabled)
    blocked = set(disabled)

    def wanted(name: str) -> bool:
        if name in blocked or (allowed is not None and name not in allowed):
            pm._book.disabled.append(name)
            pm.set_blocked(name)
            return False
        return True

    discovered = _discover(group)
    for name in sorted((allowed or set()) - {ep.name for ep in discovered}):
        log.warning("[plugins] enabled names %r, which is not installed", name)
    for ep in discovered:
        if pm.is_blocked(ep.name) or not wanted(ep.name):
            continue
        if ep.distribution:
            pm._book.distributions.setdefault(ep.name, ep.distribution)
        if pm.has_plugin(ep.name):
            other = pm.distribution_of(ep.name) or "another package"
            _fail(
                pm,
                ep.name,
                f"entry point {ep.name!r} ({ep.value}) is also declared by {other}; "
                "uninstall one or disable the name in [plugins] disabled",
                strict,
            )
            continue
        plugin: object = None
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as error:
            # A broken plugin must not take the others down: record it and go on.
            if plugin is not None and pm.is_registered(plugin):
                pm.unregister(plugin)  # pluggy may have kept it half-registered
            _fail(pm, ep.name, f"failed to load: {describe_exception(error)}", strict)

    for name, plugin in extra_plugins:
        if wanted(name):
            pm.register(plugin, name=name)

    _drop_unknown_hooks(pm, strict)
    return pm


def _drop_unknown_hooks(pm: PluginManager, strict: bool) -> None:
    """`check_pending`, one offender at a time: a hook implementation that no hookspec declares
    (a typo, or a plugin written for a newer contract) disqualifies its plugin only."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as error:
            name = pm.get_name(error.plugin) or repr(error.plugin)
            pm.unregister(error.plugin)
            hook = re.search(r"unknown hook '([^']+)'", str(error))
            what = hook.group(1) if hook else "?"
            _fail(pm, name, f"implements {what!r}, a hook this version does not know", strict)


def _fail(pm: PluginManager, name: str, reason: str, strict: bool) -> None:
    if strict:
        raise PluginLoadError(f"plugin {name!r} {reason} (strict plugin loading is on)")
    pm.record_failure(name, reason)
