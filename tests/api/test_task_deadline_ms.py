"""A task's `deadline_ms`: when it passes, the calls still out are cancelled (the upstream sees
its connections close) and the task ends with its best answer so far (`budget_exhausted`,
`budget_reason: "deadline"`), or 504 `deadline_exceeded` when there is none. A default can be
configured in plugins.toml's [strategy]."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from providers import load_settings
from tests.api.conftest import MakeApp, headers, run_task, write_plugins_toml
from tests.mock_upstreams import Fault, OpenAIMock

KEY = "sk-test-deadline"


@pytest.fixture
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key=KEY) as mock:
        yield mock


@pytest.fixture
def client(
    make_app: MakeApp, upstream: OpenAIMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    config = write_plugins_toml(
        tmp_path,
        'default_provider = "openai"\n[providers.openai]\n'
        f'base_url = "{upstream.base_url}"\nmax_retries = 0\nmultiple_samples = false\n',
    )
    with make_app(providers=load_settings(config)) as test_client:
        yield test_client


def test_a_vote_past_its_deadline_answers_with_the_samples_it_has(
    client: TestClient, upstream: OpenAIMock
) -> None:
    # Two samples answer at once, two are slow: the deadline cuts the slow ones off.
    upstream.enqueue(
        Fault.reply("Final answer: 6"),
        Fault.reply("Final answer: 6"),
        Fault.reply("Final answer: 6", delay=5),
        Fault.reply("Final answer: 6", delay=5),
    )
    started = time.monotonic()
    response = run_task(client, strategy="self_consistency", samples=4, deadline_ms=800, trace=True)
    assert time.monotonic() - started < 3
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "6" and body["votes"] == {"6": 2}
    assert body["budget_exhausted"] and body["budget_reason"] == "deadline"
    assert body["sampling"]["stopped"] == "deadline"
    errors = [step["error"] for step in body["steps"]]
    assert errors.count("deadline_exceeded") == 2
    deadline = time.monotonic() + 3
    while upstream.closed_early < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.closed_early == 2  # the slow calls' connections were closed


def test_no_answer_before_the_deadline_is_504_and_a_failed_record(
    client: TestClient, upstream: OpenAIMock
) -> None:
    upstream.always = Fault.reply("late", delay=5)
    response = run_task(client, deadline_ms=300)
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "deadline_exceeded"
    page = client.get("/query", headers=headers()).json()["data"]
    assert page[0]["status"] == "failed" and page[0]["error"]["code"] == "deadline_exceeded"


def test_a_configured_default_deadline_applies(
    make_app: MakeApp, upstream: OpenAIMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    config = write_plugins_toml(
        tmp_path,
        'default_provider = "openai"\n[strategy]\ndeadline_ms = 300\n'
        f'[providers.openai]\nbase_url = "{upstream.base_url}"\nmax_retries = 0\n',
    )
    upstream.always = Fault.reply("late", delay=5)
    with make_app(providers=load_settings(config)) as client:
        response = run_task(client)
    assert response.status_code == 504
