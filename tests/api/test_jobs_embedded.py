"""Background tasks without Redis: the API runs them itself (Taskiq's in-memory broker), with
the same statuses, progress, events, cancel and errors as with workers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from providers import load_settings
from tests.api.conftest import KEY_B, MakeApp, headers, write_plugins_toml
from tests.api.sse import parse
from tests.mock_upstreams import OpenAIMock

UPSTREAM_KEY = "sk-test-jobs-upstream"


def submit(client: TestClient, **body: Any) -> dict[str, Any]:
    body.setdefault("prompt", "Final answer: 42")
    response = client.post("/task", headers=headers(), json={"background": True, **body})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/task/{response.json()['id']}"
    accepted: dict[str, Any] = response.json()
    return accepted


def wait_status(
    client: TestClient, task_id: str, statuses: tuple[str, ...], timeout: float = 10
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = client.get(f"/task/{task_id}", headers=headers()).json()
        if record["status"] in statuses or time.monotonic() > deadline:
            return record
        time.sleep(0.02)


@pytest.fixture
def slow() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key=UPSTREAM_KEY, latency=5.0) as mock:
        yield mock


@pytest.fixture
def slow_app(
    make_app: MakeApp, slow: OpenAIMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    config = write_plugins_toml(
        tmp_path,
        'default_provider = "openai"\n[providers.openai]\n'
        f'base_url = "{slow.base_url}"\nmax_retries = 0\nmultiple_samples = false\n',
    )
    with make_app(providers=load_settings(config), job_concurrency=1) as client:
        yield client


def test_a_background_task_is_accepted_queued_then_runs_and_is_found(client: TestClient) -> None:
    accepted = submit(client, strategy="self_consistency", samples=3, trace=True)
    assert accepted["status"] == "queued" and accepted["object"] == "task"
    record = wait_status(client, accepted["id"], ("succeeded", "failed"))
    assert record["status"] == "succeeded" and record["answer"] == "42"
    assert record["source"] == "job" and record["attempts"] == 1
    assert record["progress"]["calls_done"] == 3 and record["progress"]["calls_planned"] == 3
    assert record["progress"]["votes"]["votes"] == {"42": 3}
    assert len(record["steps"]) == 3
    # The same record through the history, one row, filterable by status.
    assert client.get(f"/query/{accepted['id']}", headers=headers()).json()["status"] == (
        "succeeded"
    )
    page = client.get("/query", headers=headers(), params={"source": "job"}).json()
    assert [item["id"] for item in page["data"]] == [accepted["id"]]


def test_a_late_subscriber_sees_every_event_from_the_start_and_can_resume(
    client: TestClient,
) -> None:
    accepted = submit(client, strategy="self_consistency", samples=3)
    wait_status(client, accepted["id"], ("succeeded",))
    events = parse(client.get(f"/task/{accepted['id']}/events", headers=headers()).text)
    names = [e.event for e in events]
    assert names[0] == "task" and names[1] == "status" and names[-1] == "result"
    assert names.count("call.started") == 3 and names.count("vote") == 3
    assert events[-1].data["answer"] == "42" and events[-1].data["id"] == accepted["id"]
    # Resuming after the fourth event replays exactly the rest.
    resumed = parse(
        client.get(
            f"/task/{accepted['id']}/events",
            headers={**headers(), "Last-Event-ID": str(events[3].id)},
        ).text
    )
    assert [e.id for e in resumed] == [e.id for e in events[4:]]


def test_status_and_events_are_isolated_per_key_and_errors_are_json(client: TestClient) -> None:
    accepted = submit(client)
    task_id = accepted["id"]
    wait_status(client, task_id, ("succeeded",))
    for path in (f"/task/{task_id}", f"/task/{task_id}/events"):
        response = client.get(path, headers=headers(KEY_B))
        assert response.status_code == 404 and response.json()["error"]["code"] == "task_not_found"
    response = client.post(f"/task/{task_id}/cancel", headers=headers(KEY_B))
    assert response.status_code == 404
    response = client.post(f"/task/{task_id}/cancel", headers=headers())
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_cancellable"
    response = client.get(f"/task/{task_id}/events", headers={**headers(), "Last-Event-ID": "nope"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_event_id"
    response = client.get("/task/nope", headers=headers())
    assert response.status_code == 404 and response.json()["error"]["code"] == "task_not_found"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"background": True, "stream": True}, "validation_error"),
        ({"callback_url": "https://hooks.example.com/x"}, "validation_error"),
        (
            {"background": True, "callback_url": "https://hooks.example.com/x"},
            "callback_not_allowed",
        ),
        ({"background": True, "provider": "nope"}, "unknown_provider"),
    ],
)
def test_bad_background_requests_are_refused_before_anything_is_queued(
    client: TestClient, body: dict[str, Any], code: str
) -> None:
    response = client.post("/task", headers=headers(), json={"prompt": "x", **body})
    assert response.status_code in (400, 422) and response.json()["error"]["code"] == code
    assert client.get("/query", headers=headers()).json()["data"] == []


def test_cancel_while_queued_means_it_never_runs_and_while_running_closes_its_calls(
    slow_app: TestClient, slow: OpenAIMock
) -> None:
    client = slow_app
    running = submit(client, prompt="Final answer: 1", strategy="self_consistency", samples=2)
    queued = submit(client, prompt="Final answer: 2")  # JOB_CONCURRENCY=1: it waits
    deadline = time.monotonic() + 5
    while slow.waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow.waiting == 2
    assert client.get(f"/task/{running['id']}", headers=headers()).json()["status"] == "running"

    response = client.post(f"/task/{queued['id']}/cancel", headers=headers())
    assert response.status_code == 200 and response.json()["status"] == "cancelled"

    response = client.post(f"/task/{running['id']}/cancel", headers=headers())
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    deadline = time.monotonic() + 3
    while slow.closed_early < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow.closed_early == 2  # long before the upstream's 5 s answers
    record = wait_status(client, running["id"], ("cancelled",))
    assert record["status"] == "cancelled" and record["error"]["code"] == "cancelled"
    assert record["calls"] == 2  # what it spent
    events = parse(client.get(f"/task/{running['id']}/events", headers=headers()).text)
    assert events[-1].event == "error" and events[-1].data["error"]["code"] == "cancelled"

    time.sleep(0.5)  # the slot is free: the cancelled queued task must not run
    record = client.get(f"/task/{queued['id']}", headers=headers()).json()
    assert record["status"] == "cancelled" and record["calls"] == 0 and record["attempts"] == 0
    assert slow.calls == 2


def test_the_per_key_cap_on_active_tasks_answers_429(
    make_app: MakeApp, slow: OpenAIMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    config = write_plugins_toml(
        tmp_path,
        f'default_provider = "openai"\n[providers.openai]\nbase_url = "{slow.base_url}"\n',
    )
    with make_app(providers=load_settings(config), job_max_active_per_key=2) as client:
        first, second = submit(client), submit(client)
        response = client.post("/task", headers=headers(), json={"prompt": "x", "background": True})
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "too_many_active_tasks"
        assert response.headers["retry-after"]
        # Another key has its own cap; a cancel frees a place.
        other = client.post(
            "/task", headers=headers(KEY_B), json={"prompt": "x", "background": True}
        )
        assert other.status_code == 202
        client.post(f"/task/{first['id']}/cancel", headers=headers())
        client.post(f"/task/{second['id']}/cancel", headers=headers())
        client.post(f"/task/{other.json()['id']}/cancel", headers=headers(KEY_B))
        wait_status(client, first["id"], ("cancelled",))
        wait_status(client, second["id"], ("cancelled",))
        assert submit(client)["status"] == "queued"


def test_the_history_filters_on_queued_and_running(slow_app: TestClient, slow: OpenAIMock) -> None:
    client = slow_app
    running = submit(client, prompt="Final answer: 1")
    queued = submit(client, prompt="Final answer: 2")  # JOB_CONCURRENCY=1
    deadline = time.monotonic() + 5
    while slow.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    for status, expected in (("running", running), ("queued", queued)):
        page = client.get("/query", headers=headers(), params={"status": status}).json()
        assert [item["id"] for item in page["data"]] == [expected["id"]]
        assert page["data"][0]["status"] == status
    client.post(f"/task/{queued['id']}/cancel", headers=headers())
    client.post(f"/task/{running['id']}/cancel", headers=headers())
    wait_status(client, running["id"], ("cancelled",))
