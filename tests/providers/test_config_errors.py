"""Bad configuration fails fast, naming the file (or variable), the key and what is wrong."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from providers import ConfigError, load_registry, load_settings
from tests.providers.plugin_helpers import cli_environment, isolate, run_cli


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def config_error(tmp_path: Path, text: str) -> str:
    """The message loading (settings, then registry) from a file holding `text` fails with."""
    path = tmp_path / "plugins.toml"
    path.write_text('default_provider = "echo"\n' + text)
    with pytest.raises(ConfigError) as error:
        load_registry(load_settings(path))
    return error.value.message


BAD_FILES = {
    "unknown key": (
        "[providers.openai]\nbse_url = 'http://x'\n",
        "providers.openai.bse_url: unknown key",
    ),
    "unknown top-level key": ("colour = 'red'\n", "colour: unknown key"),
    "wrong value type": (
        "[providers.openai]\ntimeout = 'soon'\n",
        "providers.openai.timeout: expected a number, got 'soon' (a string)",
    ),
    "value out of range": (
        "[strategy]\nsamples = 0\n",
        "strategy.samples: must be between 1 and 64",
    ),
    "unknown transport": (
        "[providers.openai]\ntransport = 'grpc'\n",
        "providers.openai.transport: expected 'lean' or 'sdk', got 'grpc' (a string)",
    ),
    "unknown strategy": (
        "default_strategy = 'guess'\n",
        "default_strategy: unknown strategy 'guess'; expected one of direct, cot,",
    ),
    "invalid provider name": (
        "[providers.'my provider']\ntype = 'echo'\n",
        "providers: 'my provider' is not a valid name",
    ),
    "unknown provider type": (
        "[providers.local]\ntype = 'openai_compat'\n",
        "providers.local.type: unknown provider type 'openai_compat'; registered types: ",
    ),
    "fallback naming an unknown provider": (
        "[fallback]\necho = ['opneai']\n",
        "fallback.echo[0]: unknown provider 'opneai'; known providers: ",
    ),
    "fallback for an unknown provider": (
        "[fallback]\nnope = ['echo']\n",
        "fallback.nope: unknown provider 'nope'",
    ),
    "fallback naming itself": (
        "[fallback]\necho = ['echo']\n",
        "fallback: the chain of 'echo' names 'echo' itself",
    ),
    "choose for a name no plugin registers": (
        "[plugins.choose]\nnothing = 'echo'\n",
        "plugins.choose.nothing: no plugin registers a provider named 'nothing'",
    ),
}


@pytest.mark.parametrize(("text", "expected"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_names_the_file_the_key_and_the_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = config_error(tmp_path, text)
    assert f"{tmp_path / 'plugins.toml'}: {expected}" in message


def test_an_unknown_default_provider_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "plugins.toml"
    path.write_text('default_provider = "gpt"\n')
    with pytest.raises(ConfigError) as error:
        load_registry(load_settings(path))
    assert error.value.message.startswith(
        f"{path}: default_provider: unknown provider 'gpt'; known providers: anthropic, "
    )


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "plugins.toml"
    path.write_text('default_provider = "echo"\n[providers.openai\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert error.value.message.startswith(f"{path}: not valid TOML: ")
    assert "line 2" in error.value.message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[strategy]\nsamples = 0\nrounds = 99\n")
    assert message.splitlines() == [
        f"{tmp_path / 'plugins.toml'}: strategy.samples: must be between 1 and 64",
        f"{tmp_path / 'plugins.toml'}: strategy.rounds: must be between 0 and 10",
    ]


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONING_AGENT_PROVIDERS__OPENAI__MAX_RETRIES", "many")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert error.value.message.startswith(
        "environment variable REASONING_AGENT_PROVIDERS__OPENAI__MAX_RETRIES: "
        "providers.openai.max_retries: expected an integer, got 'many' (a string)"
    )


def test_a_variable_that_is_not_the_json_it_needs_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONING_AGENT_PROVIDERS", "{not json")
    with pytest.raises(ConfigError, match="REASONING_AGENT_PROVIDERS: not valid JSON"):
        load_settings()


def test_messages_carry_no_validation_library_noise(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[providers.openai]\ntimeout = -1\nbogus = 1\n")
    assert "pydantic" not in message
    assert "validation error" not in message
    assert "For further information" not in message
    assert "Traceback" not in message


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


COMMANDS = {
    "providers": ("providers",),
    "providers --json": ("providers", "--json"),
    "ask": ("ask", "-p", "echo", "hello"),
    # A wrong type accepted would start the server: on a free port, stopped by run_cli's timeout.
    "serve": ("serve", "--port", str(free_port())),
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_the_cli_prints_one_line_for_a_wrong_type_and_exits_1(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    (tmp_path / "plugins.toml").write_text("[providers.openai]\ntimeout = true\n")
    done = run_cli(*command, cwd=tmp_path, env=cli_environment(API_KEYS="key1"))
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        "error: config_error: plugins.toml: providers.openai.timeout: "
        "expected a number, got true (a boolean)\n",
    )
