"""Helpers for the plugin-system tests (imported, not fixtures).

Test plugins are real installed packages as far as Python is concerned: a folder holding the
module and a `<name>-<version>.dist-info` with `METADATA` and `entry_points.txt`. Putting the
folder on sys.path (in-process) or PYTHONPATH (subprocess) makes `importlib.metadata` find the
entry point exactly as it finds a pip-installed plugin; nothing in our code is patched.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Variables that would change what the registry sees: cleared for every plugin-system test.
PROVIDER_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
)

_unique = itertools.count(1)


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No provider keys, no REASONING_AGENT_* settings, and no ./plugins.toml in sight."""
    for name in list(os.environ):
        if name.startswith("REASONING_AGENT_") or name in PROVIDER_VARIABLES:
            monkeypatch.delenv(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    monkeypatch.chdir(workdir)


def unique(stem: str) -> str:
    """A module name no other test uses (imported modules stay in sys.modules)."""
    return f"{stem}_{os.getpid()}_{next(_unique)}"


# A provider class any test plugin can register: answers with a fixed text.
FIXED_PROVIDER = """
import agent_core

class Fixed(agent_core.Provider):
    answer = "fixed"
    closed = 0

    def __init__(self, *, name, config):
        self.name = name
        self.model = config.model or "fixed-1"

    async def complete(self, request):
        return agent_core.Completion(type(self).answer, request.model or self.model)

    async def aclose(self):
        type(self).closed += 1
"""


def plugin_source(*registrations: str, body: str = "") -> str:
    """A plugin module: the Fixed provider, `body`, and a hook running `registrations`."""
    calls = "\n".join(f"    {line}" for line in registrations) or "    pass"
    return (
        "from providers import hookimpl\n"
        + FIXED_PROVIDER
        + textwrap.dedent(body)
        + f"\n@hookimpl\ndef register_providers(register):\n{calls}\n"
    )


def install_plugin(
    site: Path,
    *,
    distribution: str,
    entry_points: Mapping[str, str],
    modules: Mapping[str, str],
) -> Path:
    """Writes modules and a dist-info declaring `entry_points` ({name: module}) into `site`."""
    site.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    info = site / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[reasoning_agent]\n{lines}")
    return site


def simple_plugin(site: Path, entry_point: str, source: str, *, module: str | None = None) -> str:
    """One distribution with one entry point `entry_point`; returns the module name."""
    module = module or unique(entry_point.replace("-", "_"))
    install_plugin(
        site,
        distribution=f"test-plugin-{entry_point}",
        entry_points={entry_point: module},
        modules={module: source},
    )
    return module


def cli_environment(*, pythonpath: Path | None = None, **variables: str) -> dict[str, str]:
    """The environment of a `reasoning-agent` subprocess: clean of keys and settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("REASONING_AGENT_") and name not in PROVIDER_VARIABLES
    }
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(pythonpath), env.get("PYTHONPATH", "")) if part
        )
    env.update(variables)
    return env


def reasoning_agent_command() -> list[str]:
    """The installed console script, next to this interpreter (as users run it)."""
    script = Path(sys.executable).parent / "reasoning-agent"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "api.cli"]


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*reasoning_agent_command(), *args],
        cwd=cwd,
        env=dict(env) if env is not None else cli_environment(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
