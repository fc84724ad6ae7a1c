"""Plugin discovery and loading hygiene: real entry points, one broken plugin never spreads."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from agent_core import NotConfiguredError, ReasoningAgent
from providers import (
    ConfigError,
    PluginLoadError,
    ProvidersSettings,
    build_plugin_manager,
    load_registry,
)
from providers.manager import BUILTIN_PLUGINS
from tests.providers.plugin_helpers import (
    REPO,
    cli_environment,
    install_plugin,
    isolate,
    plugin_source,
    simple_plugin,
    unique,
)

BUILTINS = ["anthropic", "echo", "openai", "openai_compatible"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path where tests install plugin distributions."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


def settings(**values: object) -> ProvidersSettings:
    return ProvidersSettings.isolated(default_provider="echo", **values)


def test_builtins_are_declared_as_entry_points_of_the_reasoning_agent_group() -> None:
    declared = {
        ep.name: ep.value for ep in importlib.metadata.entry_points(group="reasoning_agent")
    }
    assert {name: declared.get(name) for name in BUILTIN_PLUGINS} == BUILTIN_PLUGINS


def test_builtins_load_through_the_plugin_manager() -> None:
    pm = build_plugin_manager()
    assert all(pm.has_plugin(name) for name in BUILTINS)
    assert pm.failures == []


def test_a_third_party_entry_point_is_discovered_and_its_provider_serves(site: Path) -> None:
    simple_plugin(site, "thirdparty", plugin_source('register(Fixed, name="fixed")'))
    registry = load_registry(settings())
    status = registry.status("fixed")
    assert (status.status, status.plugin) == ("available", "thirdparty")


async def test_a_plugin_that_raises_on_import_is_recorded_and_skipped(site: Path) -> None:
    simple_plugin(site, "broken", 'raise RuntimeError("this plugin is broken")\n')
    registry = load_registry(settings())
    broken = registry.status("broken")
    assert broken.status == "failed"
    assert broken.reason == "failed to load: RuntimeError: this plugin is broken"
    answer = await ReasoningAgent(registry.get("echo")).ask("still here")
    assert answer.text == "still here"


def test_a_request_for_a_broken_plugin_gets_its_reason(site: Path) -> None:
    simple_plugin(site, "broken", "import a_module_that_does_not_exist\n")
    registry = load_registry(settings())
    with pytest.raises(NotConfiguredError, match="No module named 'a_module_that_does_not_exist'"):
        registry.get("broken")


def test_strict_mode_makes_a_plugin_that_fails_to_import_fatal(site: Path) -> None:
    simple_plugin(site, "broken", 'raise RuntimeError("this plugin is broken")\n')
    with pytest.raises(PluginLoadError, match="'broken' failed to load: RuntimeError"):
        load_registry(settings(plugins={"strict": True}))


def test_strict_mode_can_come_from_the_caller(site: Path) -> None:
    simple_plugin(site, "broken", 'raise RuntimeError("this plugin is broken")\n')
    with pytest.raises(PluginLoadError):
        load_registry(settings(), strict=True)


def test_a_plugin_whose_hook_raises_registers_nothing(site: Path) -> None:
    source = plugin_source('register(Fixed, name="half")', 'raise ValueError("gave up half way")')
    simple_plugin(site, "halfway", source)
    registry = load_registry(settings())
    assert "half" not in registry.names()
    status = registry.status("halfway")
    assert (status.status, status.reason) == (
        "failed",
        "register_providers failed: ValueError: gave up half way",
    )


def test_registering_something_that_is_not_a_provider_class_fails_that_plugin(
    site: Path,
) -> None:
    simple_plugin(site, "wrong", plugin_source('register(dict, name="wrong")'))
    status = load_registry(settings()).status("wrong")
    assert status.status == "failed"
    assert "is not a subclass of agent_core.Provider" in (status.reason or "")


def test_a_plugin_implementing_an_unknown_hook_is_skipped(site: Path) -> None:
    body = "\n@hookimpl\ndef register_models(register):\n    pass\n"
    simple_plugin(site, "future", plugin_source('register(Fixed, name="future_fixed")', body=body))
    registry = load_registry(settings())
    assert "future_fixed" not in registry.names()
    status = registry.status("future")
    assert status.status == "failed"
    assert "'register_models', a hook this version does not know" in (status.reason or "")


def test_a_disabled_plugin_is_listed_and_never_imported(site: Path) -> None:
    module = simple_plugin(site, "unwanted", plugin_source('register(Fixed, name="unwanted")'))
    registry = load_registry(settings(plugins={"disabled": ["unwanted"]}))
    assert registry.status("unwanted").status == "disabled"
    assert module not in sys.modules


def test_an_enabled_list_loads_only_the_plugins_it_names(site: Path) -> None:
    simple_plugin(site, "extra", plugin_source('register(Fixed, name="extra")'))
    registry = load_registry(settings(plugins={"enabled": ["echo"]}))
    available = [s.name for s in registry.statuses() if s.status == "available"]
    assert available == ["echo"]
    assert registry.status("extra").status == "disabled"


def _twins(site: Path) -> None:
    for plugin in ("twin-a", "twin-b"):
        simple_plugin(
            site / plugin, plugin, plugin_source(f'register(Fixed, name="twin")  # {plugin}')
        )


@pytest.fixture
def twin_sites(site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _twins(site)
    monkeypatch.syspath_prepend(str(site / "twin-a"))
    monkeypatch.syspath_prepend(str(site / "twin-b"))
    return site


def test_two_plugins_registering_one_name_make_it_unusable_with_the_fix_named(
    twin_sites: Path,
) -> None:
    registry = load_registry(settings())
    status = registry.status("twin")
    assert status.status == "failed"
    assert "registered by several plugins (twin-a, twin-b)" in (status.reason or "")
    assert '[plugins.choose] twin = "twin-a"' in (status.reason or "")
    with pytest.raises(NotConfiguredError, match="several plugins"):
        registry.get("twin")


def test_strict_mode_makes_a_duplicate_name_fatal(twin_sites: Path) -> None:
    with pytest.raises(PluginLoadError, match="'twin' is registered by several plugins"):
        load_registry(settings(plugins={"strict": True}))


def test_configuration_chooses_the_plugin_that_serves_a_duplicate_name(twin_sites: Path) -> None:
    registry = load_registry(settings(plugins={"choose": {"twin": "twin-b"}}))
    status = registry.status("twin")
    assert (status.status, status.plugin) == ("available", "twin-b")


def test_choosing_a_plugin_that_does_not_register_the_name_is_a_config_error(
    twin_sites: Path,
) -> None:
    with pytest.raises(
        ConfigError, match=r"plugins\.choose\.twin: plugin 'echo' does not register"
    ):
        load_registry(settings(plugins={"choose": {"twin": "echo"}}))


def test_an_alias_that_is_another_providers_name_is_dropped(site: Path) -> None:
    simple_plugin(site, "greedy", plugin_source('register(Fixed, name="greedy", aliases=["echo"])'))
    registry = load_registry(settings())
    assert registry.resolve("echo") == "echo"
    assert registry.status("greedy").aliases == ()


def test_the_same_distribution_seen_twice_on_the_path_loads_once(site: Path) -> None:
    module = unique("twice")
    for copy in ("one", "two"):
        install_plugin(
            site / copy,
            distribution="test-plugin-twice",
            entry_points={"twice": module},
            modules={module: plugin_source('register(Fixed, name="twice")')},
        )
        sys.path.insert(0, str(site / copy))
    try:
        registry = load_registry(settings())
    finally:
        sys.path.remove(str(site / "one"))
        sys.path.remove(str(site / "two"))
    assert registry.status("twice").status == "available"


def test_building_the_registry_does_not_import_the_sdks(tmp_path: Path) -> None:
    # A fresh interpreter: the SDKs cost start-up time and are only for transport = "sdk".
    script = (
        "import sys\n"
        "from providers import ProvidersSettings, load_registry\n"
        "registry = load_registry(ProvidersSettings.isolated())\n"
        "assert registry.status('openai').status == 'available', registry.status('openai')\n"
        "assert registry.status('anthropic').status == 'available'\n"
        "print(sorted(m for m in ('openai', 'anthropic', 'httpx') if m in sys.modules))\n"
    )
    env = cli_environment(OPENAI_API_KEY="sk-test", ANTHROPIC_API_KEY="sk-ant-test")
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
