"""Upstream failures through a mock OpenAI server: each kind has its status and code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from providers import load_settings
from tests.api.conftest import MakeApp, headers, run_task, write_plugins_toml
from tests.mock_upstreams import Fault, OpenAIMock


@pytest.fixture
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key="sk-test-upstream") as mock:
        yield mock


@pytest.fixture
def openai_client(
    make_app: MakeApp, upstream: OpenAIMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-upstream")
    config = write_plugins_toml(
        tmp_path,
        'default_provider = "openai"\n'
        "[providers.openai]\n"
        f'base_url = "{upstream.base_url}"\n'
        "max_retries = 0\n"
        "timeout = 0.5\n",
    )
    with make_app(providers=load_settings(config)) as client:
        yield client


def test_openai_answers_through_the_mock_upstream(
    openai_client: TestClient, upstream: OpenAIMock
) -> None:
    response = run_task(openai_client)

    assert response.status_code == 200
    assert response.json()["provider"] == "openai"
    assert upstream.calls == 1


def test_upstream_rate_limit_is_503_with_retry_after(
    openai_client: TestClient, upstream: OpenAIMock
) -> None:
    upstream.fail_next(1, Fault.rate_limited(retry_after=7))

    response = run_task(openai_client)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.headers["retry-after"] == "7"


def test_upstream_server_error_is_502(openai_client: TestClient, upstream: OpenAIMock) -> None:
    upstream.fail_next(1, Fault.error(500))

    response = run_task(openai_client)

    assert response.status_code == 502
    assert response.json()["error"]["type"] == "upstream_error"


def test_upstream_timeout_is_504(openai_client: TestClient, upstream: OpenAIMock) -> None:
    upstream.fail_next(1, Fault.slow(3.0))

    response = run_task(openai_client)

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"


def test_upstream_rejecting_our_credentials_is_502_without_details(
    openai_client: TestClient, upstream: OpenAIMock
) -> None:
    upstream.fail_next(1, Fault.error(401))

    response = run_task(openai_client)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "authentication_failed"
    assert "sk-test-upstream" not in response.text


def test_upstream_failures_are_recorded_and_counted(
    openai_client: TestClient, upstream: OpenAIMock
) -> None:
    upstream.fail_next(1, Fault.error(503))

    run_task(openai_client)
    failed = openai_client.get("/query?status=failed", headers=headers()).json()["data"]
    metrics = openai_client.get("/metrics", headers=headers()).text

    assert failed[0]["error"]["code"] == "unavailable"
    assert 'reasoning_agent_upstream_errors_total{kind="unavailable",provider="openai"}' in metrics


def test_a_failed_task_keeps_the_calls_and_trace_it_made(
    openai_client: TestClient, upstream: OpenAIMock
) -> None:
    upstream.fail_next(3, Fault.error(503))

    response = run_task(openai_client, strategy="self_consistency", samples=3)
    task_id = openai_client.get("/query?status=failed", headers=headers()).json()["data"][0]["id"]
    record = openai_client.get(f"/query/{task_id}", headers=headers()).json()

    assert response.status_code == 502
    assert record["calls"] == 3
    assert [step["purpose"] for step in record["steps"]] == ["sample 1", "sample 2", "sample 3"]
    assert {step["error"] for step in record["steps"]} == {"unavailable"}


def test_a_task_failing_after_answered_calls_accounts_for_their_tokens(
    openai_client: TestClient, upstream: OpenAIMock
) -> None:
    # refine: the draft and the critique are answered, the revision fails.
    upstream.enqueue(
        Fault.reply("a draft", usage=(10, 5)),
        Fault.reply("too vague", usage=(20, 3)),
        Fault.error(503),
    )

    response = run_task(openai_client, strategy="refine", rounds=1)
    task_id = openai_client.get("/query?status=failed", headers=headers()).json()["data"][0]["id"]
    record = openai_client.get(f"/query/{task_id}", headers=headers()).json()

    assert response.status_code == 502
    assert record["calls"] == 3
    assert [step["error"] for step in record["steps"]] == [None, None, "unavailable"]
    assert record["usage"] == {"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38}
