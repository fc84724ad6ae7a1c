"""`reasoning-agent providers` and `reasoning-agent ask`, run as users run them (subprocesses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_core import LIMITS, FloatRange, IntRange
from tests.providers.plugin_helpers import cli_environment, run_cli, simple_plugin

BROKEN = 'raise RuntimeError("this plugin is broken")\n'


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory: no ./plugins.toml is read unless a test writes one."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    simple_plugin(site, "broken", BROKEN)
    return site


def test_providers_lists_each_status_with_its_reason(workdir: Path, broken_site: Path) -> None:
    done = run_cli("providers", cwd=workdir, env=cli_environment(pythonpath=broken_site))
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0].lstrip("*"): line for line in done.stdout.splitlines()[1:] if line}
    assert "available" in rows["echo"]
    assert "missing credentials" in rows["openai"]
    assert "OPENAI_API_KEY is not set" in rows["openai"]
    assert "failed to load: RuntimeError: this plugin is broken" in rows["broken"]
    assert rows["openai"].startswith("*")  # the default provider


def test_providers_json_is_machine_readable(workdir: Path) -> None:
    done = run_cli("providers", "--json", cwd=workdir)
    listing = json.loads(done.stdout)
    by_name = {p["name"]: p for p in listing["providers"]}
    assert listing["default"] == "openai"
    assert (by_name["anthropic"]["status"], by_name["anthropic"]["reason"]) == (
        "missing_credentials",
        "ANTHROPIC_API_KEY is not set",
    )


def test_providers_shows_a_provider_as_available_once_its_key_is_set(workdir: Path) -> None:
    env = cli_environment(ANTHROPIC_API_KEY="sk-ant-test")
    listing = json.loads(run_cli("providers", "--json", cwd=workdir, env=env).stdout)
    anthropic = next(p for p in listing["providers"] if p["name"] == "anthropic")
    assert anthropic["status"] == "available"


def test_providers_strict_exits_1_naming_the_broken_plugin(
    workdir: Path, broken_site: Path
) -> None:
    env = cli_environment(pythonpath=broken_site)
    done = run_cli("providers", "--strict", cwd=workdir, env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: plugin_error: plugin 'broken' failed to load")
    assert "Traceback" not in done.stderr


def test_ask_prints_the_answer(workdir: Path) -> None:
    done = run_cli("ask", "--provider", "echo", "Is this thing on?", cwd=workdir)
    assert (done.returncode, done.stdout, done.stderr) == (0, "Is this thing on?\n", "")


def test_ask_uses_the_configured_default_provider(workdir: Path) -> None:
    (workdir / "plugins.toml").write_text('default_provider = "echo"\n')
    done = run_cli("ask", "from the file", cwd=workdir)
    assert done.stdout == "from the file\n"


def test_ask_json_carries_the_strategy_votes_and_trace(workdir: Path) -> None:
    done = run_cli(
        "ask",
        "-p",
        "echo",
        "--strategy",
        "self_consistency",
        "--samples",
        "3",
        "--json",
        "--trace",
        "42",
        cwd=workdir,
    )
    answer = json.loads(done.stdout)
    assert (answer["text"], answer["votes"], answer["calls"]) == ("42", {"42": 3}, 3)
    assert [step["provider"] for step in answer["steps"]] == ["echo"] * 3


def test_ask_trace_goes_to_stderr_and_keeps_stdout_for_the_answer(workdir: Path) -> None:
    done = run_cli("ask", "-p", "echo", "--trace", "traced", cwd=workdir)
    assert done.stdout == "traced\n"
    assert "#0 answer provider=echo model=echo-1" in done.stderr


def test_ask_reads_the_prompt_from_standard_input(workdir: Path) -> None:
    done = run_cli("ask", "-p", "echo", "-", cwd=workdir, stdin="piped prompt")
    assert done.stdout == "piped prompt\n"


def test_ask_without_the_key_names_the_variable_and_exits_1(workdir: Path) -> None:
    done = run_cli("ask", "hello", cwd=workdir)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "error: not_configured: provider 'openai' is not configured: OPENAI_API_KEY is not set\n"
    )


def test_ask_an_unknown_provider_is_refused_as_by_the_api(workdir: Path) -> None:
    done = run_cli("ask", "-p", "nope", "hello", cwd=workdir)
    assert done.returncode == 1
    assert done.stderr.startswith(
        "error: unknown_provider: unknown provider 'nope'; available providers: "
    )
    assert done.stderr.rstrip().endswith("(`reasoning-agent providers` shows their status)")


def test_ask_an_option_the_engine_refuses_is_an_invalid_request(workdir: Path) -> None:
    done = run_cli(
        "ask", "-p", "echo", "--temperature", "0", "-s", "self_consistency", "x", cwd=workdir
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: invalid_request: self_consistency needs a temperature")


def test_every_task_option_has_its_command_line_flag() -> None:
    import argparse

    from api.cli.ask import add_parser
    from providers.task_options import OPTION_NAMES

    parser = add_parser(argparse.ArgumentParser().add_subparsers())
    destinations = {action.dest for action in parser._actions}
    assert set(OPTION_NAMES) <= destinations, set(OPTION_NAMES) - destinations


# Every numeric option, with the engine's own range (agent_core.LIMITS): the command line
# refuses what the engine would, naming the range, before anything runs.
_BOUNDED_OPTIONS: dict[str, IntRange | FloatRange] = {
    "--samples": LIMITS.samples,
    "--rounds": LIMITS.rounds,
    "--max-tokens": LIMITS.max_tokens,
    "--max-calls": LIMITS.max_calls,
    "--max-total-tokens": LIMITS.max_total_tokens,
    "--temperature": LIMITS.temperature,
}


@pytest.mark.parametrize("option", sorted(_BOUNDED_OPTIONS))
def test_ask_refuses_numbers_outside_the_engines_range(workdir: Path, option: str) -> None:
    limit = _BOUNDED_OPTIONS[option]
    whole = isinstance(limit, IntRange)
    too_big = str(limit.maximum + 1) if whole else str(limit.maximum + 0.5)
    too_small = str(limit.minimum - 1) if whole else str(limit.minimum - 0.5)
    for value in (too_big, too_small, str(2**64), "-" + str(2**70), "1e309", "nan", "abc"):
        done = run_cli("ask", "-p", "echo", f"{option}={value}", "x", cwd=workdir)
        assert done.returncode == 2, (option, value, done.stderr)
        assert "Traceback" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"reasoning-agent ask: error: argument {option}: "), last
        assert (
            f"between {limit.minimum:g} and {limit.maximum:g}" in last
            if not whole
            else f"between {limit.minimum} and {limit.maximum}" in last
        ) or "is not a" in last, last
    inside = str(limit.maximum) if whole else "1"
    done = run_cli("ask", "-p", "echo", f"{option}={inside}", "Final answer: 4", cwd=workdir)
    assert done.returncode == 0, (option, done.stderr)


def test_a_bad_configuration_file_is_reported_without_a_traceback(workdir: Path) -> None:
    (workdir / "plugins.toml").write_text("[providers.openai]\nbogus = 1\n")
    done = run_cli("ask", "-p", "echo", "hello", cwd=workdir)
    assert (done.returncode, done.stderr) == (
        1,
        "error: config_error: plugins.toml: providers.openai.bogus: unknown key\n",
    )


def test_the_config_option_names_the_file(workdir: Path, tmp_path: Path) -> None:
    config = tmp_path / "custom.toml"
    config.write_text('default_provider = "echo"\n')
    done = run_cli("--config", str(config), "ask", "custom", cwd=workdir)
    assert done.stdout == "custom\n"
