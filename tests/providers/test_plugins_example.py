"""The example third-party plugin (examples/plugin-example), installed as users install it.

CI installs it before pytest (`uv pip install -e examples/plugin-example`); when it is missing
the first test here installs it the same way, so a local run proves the same thing.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from agent_core import ReasoningAgent
from providers import ProvidersSettings, load_registry
from tests.providers.plugin_helpers import REPO, cli_environment, isolate, run_cli

EXAMPLE = REPO / "examples" / "plugin-example"
DISTRIBUTION = "reasoning-agent-calculator"


def _installed() -> bool:
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module", autouse=True)
def _example_installed() -> None:
    if _installed():
        return
    uv = shutil.which("uv")
    command = (
        [uv, "pip", "install", "--python", sys.executable, "-e", str(EXAMPLE)]
        if uv
        else [sys.executable, "-m", "pip", "install", "-e", str(EXAMPLE)]
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    # An editable install is a new .pth file: make this running interpreter read it too.
    site.addsitedir(sysconfig.get_paths()["purelib"])
    importlib.invalidate_caches()
    if done.returncode != 0 or not _installed():
        pytest.fail(f"could not install the example plugin ({' '.join(command)}):\n{done.stderr}")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def test_the_example_declares_its_entry_point_in_the_reasoning_agent_group() -> None:
    entry_points = importlib.metadata.distribution(DISTRIBUTION).entry_points
    declared = [(ep.group, ep.name, ep.value) for ep in entry_points]
    assert declared == [("reasoning_agent", "calculator", "reasoning_agent_calculator")]


def test_the_example_is_discovered_and_listed_as_available() -> None:
    status = load_registry(ProvidersSettings.isolated()).status("calculator")
    assert (status.status, status.plugin, status.aliases, status.default_model) == (
        "available",
        "calculator",
        ("calc",),
        "calculator-1",
    )


async def test_the_example_answers_a_task_through_reasoning_agent() -> None:
    registry = load_registry(ProvidersSettings.isolated())
    agent = ReasoningAgent(registry.get("calculator"))
    answer = await agent.ask("What is 2 + 3 * 4?", strategy="self_consistency", samples=3)
    assert (answer.text, answer.votes, answer.provider) == ("14", {"14": 3}, "calculator")


def test_the_example_is_in_the_providers_listing(tmp_path: Path) -> None:
    done = run_cli("providers", cwd=tmp_path, env=cli_environment())
    row = next(line for line in done.stdout.splitlines() if line.lstrip(" *").startswith("calc"))
    assert row.split()[:5] == [
        "calculator",
        "calculator",
        "available",
        "calculator-1",
        "calculator",
    ]


def test_the_example_answers_from_the_command_line(tmp_path: Path) -> None:
    done = run_cli("ask", "--provider", "calc", "What is (7 - 2) ^ 2?", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "(7 - 2) ^ 2 = 25\nFinal answer: 25\n")
