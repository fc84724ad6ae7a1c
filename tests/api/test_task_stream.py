"""POST /task as Server-Sent Events: the task id first, each call as it starts and finishes,
the running vote, and last the same object as the non-streamed response, after the record is
committed; a failure is an `error` event with the error envelope; a client that disconnects
cancels the task (the upstream sees its connections close) and it is recorded as cancelled."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from providers import load_settings
from tests.api.conftest import MakeApp, Server, headers, server_env, write_plugins_toml
from tests.api.sse import Event, parse
from tests.mock_upstreams import Fault, OpenAIMock

UPSTREAM_KEY = "sk-test-stream-upstream"


def _stream(client: TestClient, **body: object) -> tuple[int, str, list[Event]]:
    body.setdefault("prompt", "Final answer: 12")
    response = client.post("/task", headers=headers(), json={"stream": True, **body})
    return response.status_code, response.headers.get("content-type", ""), parse(response.text)


def test_a_streamed_vote_reports_every_sample_then_the_result(client: TestClient) -> None:
    status, content_type, events = _stream(
        client, provider="echo", strategy="self_consistency", samples=4, trace=True
    )
    assert status == 200 and content_type.startswith("text/event-stream")
    names = [e.event for e in events]
    assert names[0] == "task" and names[-1] == "result"
    assert names.count("call.started") == 4 and names.count("call.finished") == 4
    assert names.count("vote") == 4
    assert [e.id for e in events] == [str(i) for i in range(1, len(events) + 1)]
    task_id = events[0].data["id"]
    finished = [e.data for e in events if e.event == "call.finished"]
    assert all(f["candidate"] == "12" and f["planned"] == 4 for f in finished)
    assert sorted(f["done"] for f in finished) == [1, 2, 3, 4]
    # call.started says when each call went out, as its trace step records it.
    started = {e.data["call"]: e.data["started_ms"] for e in events if e.event == "call.started"}
    assert started == {f["call"]: f["started_ms"] for f in finished}
    assert all(isinstance(start, float) and start >= 0 for start in started.values())
    votes = [e.data for e in events if e.event == "vote"]
    assert votes[-1] == {"votes": {"12": 4}, "cast": 4, "planned": 4, "leader": "12", "share": 1.0}
    result = events[-1].data
    assert result["id"] == task_id and result["votes"] == {"12": 4}
    # The result is the non-streamed response's object, and the record is already there.
    plain = client.post(
        "/task",
        headers=headers(),
        json={
            "prompt": "Final answer: 12",
            "provider": "echo",
            "strategy": "self_consistency",
            "samples": 4,
            "trace": True,
        },
    ).json()
    assert set(result) == set(plain)
    stored = client.get(f"/query/{task_id}", headers=headers()).json()
    assert stored["status"] == "succeeded" and len(stored["steps"]) == 4


def test_accept_event_stream_asks_for_a_stream_too(client: TestClient) -> None:
    response = client.post(
        "/task",
        headers={**headers(), "Accept": "text/event-stream"},
        json={"prompt": "hi", "provider": "echo"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert [e.event for e in parse(response.text)] == [
        "task",
        "call.started",
        "delta",
        "call.finished",
        "result",
    ]


def test_the_answer_streams_as_deltas_before_the_result(client: TestClient) -> None:
    status, _, events = _stream(client, provider="echo", prompt="one two three four")
    assert status == 200
    deltas = [e.data["text"] for e in events if e.event == "delta"]
    assert len(deltas) == 4 and "".join(deltas) == "one two three four"
    assert events[-1].event == "result" and events[-1].data["answer"] == "one two three four"


def test_bad_input_and_bad_keys_are_plain_json_errors_before_any_stream(
    client: TestClient,
) -> None:
    response = client.post(
        "/task", headers=headers(), json={"prompt": "x", "stream": True, "samples": 0}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    response = client.post("/task", json={"prompt": "x", "stream": True})
    assert response.status_code == 401
    response = client.post(
        "/task", headers=headers(), json={"prompt": "x", "stream": True, "provider": "nope"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_provider"


@pytest.fixture
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key=UPSTREAM_KEY) as mock:
        yield mock


def test_a_failure_midway_is_an_error_event_and_a_failed_record(
    make_app: MakeApp, upstream: OpenAIMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    config = write_plugins_toml(
        tmp_path,
        'default_provider = "openai"\n[providers.openai]\n'
        f'base_url = "{upstream.base_url}"\nmax_retries = 0\n',
    )
    upstream.always = Fault.error(500)
    with make_app(providers=load_settings(config)) as client:
        status, _, events = _stream(client, strategy="refine")
        assert status == 200
        assert [e.event for e in events] == ["task", "call.started", "call.finished", "error"]
        assert events[2].data["error"] == "unavailable"
        envelope = events[-1].data["error"]
        assert envelope["code"] == "unavailable" and envelope["type"] == "upstream_error"
        stored = client.get(f"/query/{events[0].data['id']}", headers=headers()).json()
        assert stored["status"] == "failed" and stored["error"]["code"] == "unavailable"


def test_a_client_that_disconnects_cancels_the_task_and_its_upstream_calls(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    with OpenAIMock(api_key=UPSTREAM_KEY, latency=5.0) as slow:
        (tmp_path / "slow").mkdir()
        config = write_plugins_toml(
            tmp_path / "slow",
            'default_provider = "openai"\n[providers.openai]\n'
            f'base_url = "{slow.base_url}"\nmax_retries = 0\nmultiple_samples = false\n',
        )
        env = server_env(tmp_path, OPENAI_API_KEY=UPSTREAM_KEY)
        server = serve({**env, "REASONING_AGENT_CONFIG": str(config)})
        body = {
            "prompt": "Final answer: 1",
            "strategy": "self_consistency",
            "samples": 4,
            "stream": True,
        }
        with (
            httpx.Client(timeout=10) as http,
            http.stream("POST", f"{server.url}/task", headers=headers(), json=body) as response,
        ):
            lines = response.iter_lines()
            task_event = next(e for e in _events_of(lines) if e.event == "task")
            # Wait until the four calls are held by the slow upstream, then go away.
            deadline = time.monotonic() + 5
            while slow.waiting < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert slow.waiting == 4, (slow.calls, server.output()[-3000:])
        # The upstream sees its four connections close long before its 5 s answers.
        deadline = time.monotonic() + 3
        while slow.closed_early < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.closed_early == 4
        record = _wait_for_record(server, task_event.data["id"])
        assert record["status"] == "cancelled" and record["error"]["code"] == "cancelled"
        assert record["calls"] == 4


def _events_of(lines: Iterator[str]) -> Iterator[Event]:
    from tests.api.sse import events

    return events(lines)


def _wait_for_record(server: Server, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.url}/query/{task_id}", headers=headers())
        if response.status_code == 200:
            record: dict[str, Any] = response.json()
            return record
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} was not recorded:\n{server.output()[-4000:]}")


def test_streams_are_counted_in_the_metrics(client: TestClient) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def samples() -> dict[str, float]:
        text = client.get("/metrics", headers=headers()).text
        return {
            f"{s.name}{sorted(s.labels.items())}": s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name.startswith("reasoning_agent_stream_") and s.name.endswith("_count")
        }

    before = samples()
    _stream(client, provider="echo")
    after = samples()
    first = "reasoning_agent_stream_first_event_seconds_count[('face', 'task')]"
    done = (
        "reasoning_agent_stream_duration_seconds_count[('face', 'task'), ('outcome', 'succeeded')]"
    )
    assert after[first] == before.get(first, 0) + 1
    assert after[done] == before.get(done, 0) + 1
