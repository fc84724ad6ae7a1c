"""The README's promises, run verbatim with curl against a real server on localhost:8000.

The server gets the README's Docker environment (API_KEYS=key1,key2, RATE_LIMIT=60/minute,
OPENAI_API_KEY) and the repository's plugins.toml; OPENAI_BASE_URL points the openai provider
at a local mock of OpenAI's API, since tests never call a real LLM.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import REPO_ROOT, Server, free_port, port_is_free, server_env
from tests.api.sse import parse
from tests.mock_upstreams import OpenAIMock

README_TASK = """curl -X POST http://localhost:8000/task \\
    -H 'X-API-Key: key1' \\
    -H 'Content-Type: application/json' \\
    -d '{"prompt": "Hello, world!"}'"""


def _curl(command: str) -> str:
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
    )
    return result.stdout


@pytest.fixture
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key="sk-readme") as mock:
        yield mock


def _readme_env(tmp_path: Path, upstream: OpenAIMock | None) -> dict[str, str]:
    env = server_env(
        tmp_path,
        API_KEYS="key1,key2",
        ADMIN_API_KEYS="",
        RATE_LIMIT="60/minute",
        REASONING_AGENT_CONFIG=str(REPO_ROOT / "plugins.toml"),
    )
    if upstream is not None:
        env.update(OPENAI_API_KEY="sk-readme", OPENAI_BASE_URL=upstream.base_url)
    return env


@pytest.fixture
def readme_server(serve: Callable[..., Server], tmp_path: Path, upstream: OpenAIMock) -> Server:
    assert port_is_free(8000), "the README's examples need port 8000 on localhost"
    return serve(_readme_env(tmp_path, upstream), port=8000)


def test_readme_task_request_works_verbatim(readme_server: Server, upstream: OpenAIMock) -> None:
    body = json.loads(_curl(README_TASK))

    assert body["answer"] == "Hello, world!"
    assert body["provider"] == "openai"
    assert upstream.calls == 1


def _readme_block(after: str, language: str) -> str:
    """The first `language` code block of the README after the line `after` starts with."""
    text = (REPO_ROOT / "README.md").read_text()
    rest = text[text.index(after) :]
    start = rest.index(f"```{language}\n") + len(language) + 4
    return rest[start : rest.index("```", start)]


def test_readme_openai_sdk_example_works_verbatim(
    readme_server: Server, upstream: OpenAIMock, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _readme_block("Or through its OpenAI-compatible face", "python")

    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    # Closed by the client, so that port 8000 is not left in TIME_WAIT for the next test.
    namespace["client"].close()

    # The mock upstream repeats the question: each sample's answer is its last number.
    assert capsys.readouterr().out == "24 {'24': 5}\n"
    assert upstream.calls >= 1
    history = httpx.get("http://localhost:8000/query?source=v1", headers={"X-API-Key": "key1"})
    [task] = history.json()["data"]
    assert task["strategy"] == "self_consistency" and task["provider"] == "openai"


def test_readme_vote_across_providers_example_works_verbatim(
    readme_server: Server, upstream: OpenAIMock
) -> None:
    # No ANTHROPIC_API_KEY here: anthropic's eight samples are missing votes, not a failure.
    command = _readme_block("A vote that stops when it is decided", "sh")
    events = parse(_curl(command))
    assert events[0].event == "task" and events[-1].event == "result"
    result = events[-1].data
    assert result["answer"] == "24"  # the mock repeats the prompt; its last number
    assert result["sampling"]["stopped"] in {"confident", "settled"}
    assert result["sampling"]["drawn"] < 16
    [seat] = result["votes_by_provider"]
    assert seat.startswith("openai/")
    assert result["cost_usd"] is not None and result["cost_usd"] <= 0.10


def test_readme_429_example_after_60_requests_in_a_minute(readme_server: Server) -> None:
    with httpx.Client(timeout=10) as http:
        for _ in range(60):
            assert http.get(
                "http://localhost:8000/providers", headers={"X-API-Key": "key1"}
            ).is_success

    head = _curl(README_TASK.replace("curl -X", "curl -si -X")).split("\r\n\r\n")[0]
    lines = head.splitlines()

    assert lines[0] == "HTTP/1.1 429 Too Many Requests"
    assert "x-ratelimit-limit: 60" in lines
    assert "x-ratelimit-remaining: 0" in lines
    reset = next(line for line in lines if line.startswith("x-ratelimit-reset: "))
    assert 0 < int(reset.split(": ")[1]) <= 60
    assert any(line.startswith("retry-after: ") for line in lines)


def test_readme_metrics_and_query_endpoints_answer_with_a_key(readme_server: Server) -> None:
    _curl(README_TASK)
    metrics = _curl("curl -s http://localhost:8000/metrics -H 'X-API-Key: key2'")
    history = json.loads(_curl("curl -s http://localhost:8000/query -H 'X-API-Key: key1'"))

    assert "reasoning_agent_tasks_total" in metrics
    assert history["data"][0]["prompt"] == "Hello, world!"


def test_readme_local_development_command_serves_the_app(
    serve: Callable[..., Server], tmp_path: Path, upstream: OpenAIMock
) -> None:
    server = serve(_readme_env(tmp_path, upstream), uvicorn=True, port=free_port())

    response = httpx.post(
        f"{server.url}/task", headers={"X-API-Key": "key1"}, json={"prompt": "Hello, world!"}
    )

    assert response.status_code == 200
    assert response.json()["answer"] == "Hello, world!"


def test_readme_request_without_openai_key_says_what_to_set(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve(_readme_env(tmp_path, None))

    response = httpx.post(
        f"{server.url}/task", headers={"X-API-Key": "key1"}, json={"prompt": "Hello, world!"}
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_configured"
    assert "OPENAI_API_KEY" in response.json()["error"]["message"]


def test_readme_keyless_local_run_answers_through_echo(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    # scripts/run.sh without OPENAI_API_KEY makes the offline provider the default
    assert port_is_free(8000), "the README's examples need port 8000 on localhost"
    env = _readme_env(tmp_path, None)
    env["REASONING_AGENT_DEFAULT_PROVIDER"] = "echo"
    serve(env, port=8000)

    body = json.loads(_curl(README_TASK))

    assert body["answer"] == "Hello, world!"
    assert body["provider"] == "echo"
