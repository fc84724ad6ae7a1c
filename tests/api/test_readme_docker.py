"""The README's Docker quickstart, read from README.md and run verbatim against a real server.

The server gets exactly the environment of the README's `docker run` line (its `-e` options,
including the placeholder `OPENAI_API_KEY=sk-...`) and the repository's plugins.toml, which the
image carries at /app/plugins.toml; it listens on localhost:8000 as the container would. The
README's request names the offline `echo` provider, so it must answer without any LLM key.
(scripts/container-smoke.sh runs the same request against the built image.)
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.api.conftest import REPO_ROOT, Server, port_is_free, server_env

SECTION = "## Quickstart (Docker)"


def docker_section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def shell_blocks(section: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def docker_run_env(section: str) -> dict[str, str]:
    """The `-e NAME=VALUE` options of the section's `docker run` command."""
    line = next(
        line
        for block in shell_blocks(section)
        for line in block.splitlines()
        if line.startswith("docker run ")
    )
    words = shlex.split(line)
    pairs = [words[i + 1] for i, word in enumerate(words) if word == "-e"]
    return dict(pair.split("=", 1) for pair in pairs)


def readme_request(section: str) -> str:
    """The section's `curl` command, as written (continuation lines included)."""
    return next(block for block in shell_blocks(section) if block.startswith("curl "))


def _start(serve: Callable[..., Server], tmp_path: Path, env: dict[str, str]) -> Server:
    assert port_is_free(8000), "the README's examples need port 8000 on localhost"
    base = server_env(
        tmp_path, ADMIN_API_KEYS="", REASONING_AGENT_CONFIG=str(REPO_ROOT / "plugins.toml")
    )
    return serve({**base, **env}, port=8000)


def _run_verbatim(command: str) -> dict[str, object]:
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
    )
    body: dict[str, object] = json.loads(result.stdout)
    return body


def test_the_docker_section_has_a_request_that_names_the_echo_provider() -> None:
    section = docker_section()
    request = readme_request(section)
    words = shlex.split(request)
    payload = json.loads(words[words.index("-d") + 1])

    assert "http://localhost:8000/task" in words
    assert f"X-API-Key: {docker_run_env(section)['API_KEYS'].split(',')[0]}" in words
    assert payload["provider"] == "echo"
    assert "REASONING_AGENT_DEFAULT_PROVIDER=echo" in section
    assert "--secret id=ca," in section  # the build note for TLS-intercepting proxies


def test_the_readme_docker_request_answers_offline_verbatim(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    section = docker_section()
    env = docker_run_env(section)
    assert env["OPENAI_API_KEY"] == "sk-..."  # a placeholder: never a real call
    _start(serve, tmp_path, env)

    request = readme_request(section)
    body = _run_verbatim(request)

    words = shlex.split(request)
    assert body["answer"] == json.loads(words[words.index("-d") + 1])["prompt"]
    assert body["provider"] == "echo"


def test_without_an_openai_key_the_echo_default_makes_the_service_ready(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    env = docker_run_env(docker_section())
    del env["OPENAI_API_KEY"]
    server = _start(serve, tmp_path, {**env, "REASONING_AGENT_DEFAULT_PROVIDER": "echo"})

    ready = httpx.get(f"{server.url}/readyz")
    task = httpx.post(
        f"{server.url}/task", headers={"X-API-Key": "key1"}, json={"prompt": "no key"}
    )

    assert ready.status_code == 200
    assert task.json()["provider"] == "echo"
    assert task.json()["answer"] == "no key"
