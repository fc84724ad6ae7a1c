"""plugins.toml and the environment: where settings come from, and which wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers import ConfigError, ProvidersSettings, load_registry, load_settings
from tests.providers.plugin_helpers import REPO, isolate


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_without_any_file_the_built_in_defaults_apply() -> None:
    settings = load_settings()
    assert (settings.source, settings.default_provider, settings.default_strategy) == (
        None,
        "openai",
        "direct",
    )


def test_plugins_toml_in_the_working_directory_is_read() -> None:
    write(Path("plugins.toml"), 'default_provider = "echo"\n')
    settings = load_settings()
    assert (settings.default_provider, settings.source) == ("echo", Path("plugins.toml"))


def test_reasoning_agent_config_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "elsewhere.toml", 'default_strategy = "cot"\n')
    monkeypatch.setenv("REASONING_AGENT_CONFIG", str(config))
    assert load_settings().default_strategy == "cot"


def test_a_named_file_that_does_not_exist_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REASONING_AGENT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert error.value.message == (
        f"{tmp_path / 'missing.toml'}: configuration file not found "
        "(named by REASONING_AGENT_CONFIG)"
    )


def test_the_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "p.toml", 'default_provider = "openai"\n')
    monkeypatch.setenv("REASONING_AGENT_DEFAULT_PROVIDER", "echo")
    assert load_settings(config).default_provider == "echo"


def test_a_nested_variable_overrides_one_key_of_a_table_and_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "p.toml",
        '[providers.local]\ntype = "openai_compatible"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'model = "small"\n',
    )
    monkeypatch.setenv("REASONING_AGENT_PROVIDERS__LOCAL__MODEL", "large")
    local = load_settings(config).providers["local"]
    assert (local.type, local.base_url, local.model) == (
        "openai_compatible",
        "http://127.0.0.1:9/v1",
        "large",
    )


def test_values_given_in_code_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONING_AGENT_DEFAULT_PROVIDER", "openai")
    assert load_settings(default_provider="echo").default_provider == "echo"


def test_a_provider_table_type_defaults_to_its_name(tmp_path: Path) -> None:
    config = write(tmp_path / "p.toml", "[providers.anthropic]\ntimeout = 5\n")
    assert load_settings(config).providers["anthropic"].type == "anthropic"


def test_plugin_lists_from_the_environment_may_be_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REASONING_AGENT_PLUGINS__DISABLED", "anthropic, calculator,")
    assert load_settings().plugins.disabled == ["anthropic", "calculator"]


def test_a_fallback_chain_from_the_environment_may_be_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REASONING_AGENT_FALLBACK__OPENAI", "anthropic,echo")
    assert load_settings().fallback == {"openai": ["anthropic", "echo"]}


def test_lists_from_the_environment_may_be_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONING_AGENT_PLUGINS__DISABLED", '["anthropic", "calculator"]')
    monkeypatch.setenv("REASONING_AGENT_FALLBACK__OPENAI", '["anthropic"]')
    settings = load_settings()
    assert (settings.plugins.disabled, settings.fallback) == (
        ["anthropic", "calculator"],
        {"openai": ["anthropic"]},
    )


def test_strategy_defaults_become_task_options(tmp_path: Path) -> None:
    config = write(tmp_path / "p.toml", "[strategy]\nsamples = 7\nmax_calls = 30\n")
    options = load_settings(config).strategy.task_options()
    assert options == {"samples": 7, "rounds": 1, "max_calls": 30}


def test_default_model_becomes_the_default_providers_model() -> None:
    settings = ProvidersSettings.isolated(default_provider="echo", default_model="echo-big")
    assert load_registry(settings).default_model() == "echo-big"


def test_isolated_settings_ignore_the_environment_and_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(Path("plugins.toml"), 'default_strategy = "cot"\n')
    monkeypatch.setenv("REASONING_AGENT_DEFAULT_PROVIDER", "anthropic")
    settings = ProvidersSettings.isolated()
    assert (settings.default_provider, settings.default_strategy) == ("openai", "direct")


def test_the_repository_plugins_toml_loads_without_any_api_key() -> None:
    registry = load_registry(load_settings(REPO / "plugins.toml"))
    openai = registry.status()
    assert (openai.name, openai.status, openai.reason) == (
        "openai",
        "missing_credentials",
        "OPENAI_API_KEY is not set",
    )
    assert registry.status("ollama").status == "disabled"
    assert registry.status("echo").status == "available"
