"""A background task's callback (signed, retried, its outcome recorded) and its retry policy
(upstream unavailability retried, invalid requests not)."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from providers import load_settings
from tests.api.conftest import MakeApp, headers, write_plugins_toml
from tests.api.sse import parse
from tests.mock_upstreams import Fault, OpenAIMock

SECRET = "test-callback-secret-0123456789"
UPSTREAM_KEY = "sk-test-jobs-retries"


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300) -> bool:
    """The receiver's side, as docs/api.md gives it."""
    timestamp = headers["x-reasoningagent-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    signature = headers["x-reasoningagent-signature"].removeprefix("sha256=")
    fresh = abs(time.time() - int(timestamp)) <= tolerance
    return fresh and hmac.compare_digest(expected.hexdigest(), signature)


class Receiver:
    """An HTTP endpoint that records callbacks; it answers with `statuses` in turn (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        statuses_left = list(statuses)
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(statuses_left.pop(0) if statuses_left else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/done"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver([503])
    yield hooks
    hooks.close()


def wait_for(client: TestClient, task_id: str, until: Any, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = client.get(f"/task/{task_id}", headers=headers()).json()
        if until(record) or time.monotonic() > deadline:
            return record
        time.sleep(0.02)


def test_the_callback_is_signed_retried_and_its_outcome_recorded(
    make_app: MakeApp, receiver: Receiver
) -> None:
    with make_app(
        callback_allowed_hosts=["127.0.0.1"], callback_secret=SECRET, callback_retry_seconds=0.1
    ) as client:
        response = client.post(
            "/task",
            headers=headers(),
            json={"prompt": "Final answer: 9", "background": True, "callback_url": receiver.url},
        )
        assert response.status_code == 202
        task_id = response.json()["id"]
        record = wait_for(client, task_id, lambda r: r["callback"] is not None)
    assert record["callback"]["status"] == "delivered" and record["callback"]["attempts"] == 2
    assert record["callback"]["last_status"] == 200
    assert len(receiver.received) == 2  # a 503, then the delivery
    for received_headers, body in receiver.received:
        assert verify(SECRET, received_headers, body)
        assert not verify("another-secret", received_headers, body)
        payload = orjson.loads(body)
        assert payload["id"] == task_id and payload["status"] == "succeeded"
    # A body changed on the way no longer matches its signature.
    received_headers, body = receiver.received[-1]
    assert not verify(SECRET, received_headers, body.replace(b"succeeded", b"failed"))


def test_a_callback_host_not_allowed_is_refused(make_app: MakeApp) -> None:
    with make_app(callback_allowed_hosts=["*.example.com"], callback_secret=SECRET) as client:
        for url, ok in (
            ("https://hooks.example.com/x", True),
            ("https://example.com/x", False),
            ("https://evil.example.com.attacker.net/x", False),
            ("http://169.254.169.254/latest", False),
            ("ftp://hooks.example.com/x", False),
            ("https://user:pw@hooks.example.com/x", False),
        ):
            response = client.post(
                "/task",
                headers=headers(),
                json={"prompt": "x", "background": True, "callback_url": url},
            )
            assert (response.status_code == 202) is ok, (url, response.text)
            if not ok:
                assert response.json()["error"]["code"] == "callback_not_allowed"
                assert SECRET not in response.text


@pytest.fixture
def flaky() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key=UPSTREAM_KEY) as mock:
        yield mock


def test_upstream_unavailability_is_retried_and_an_invalid_request_is_not(
    make_app: MakeApp, flaky: OpenAIMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    config = write_plugins_toml(
        tmp_path,
        'default_provider = "openai"\n[providers.openai]\n'
        f'base_url = "{flaky.base_url}"\nmax_retries = 0\n',
    )
    with make_app(
        providers=load_settings(config), job_retry_seconds=0.1, job_max_attempts=3
    ) as client:
        flaky.fail_next(2, Fault.error(503))  # unavailable twice, then fine
        task_id = client.post(
            "/task", headers=headers(), json={"prompt": "Final answer: 3", "background": True}
        ).json()["id"]
        record = wait_for(client, task_id, lambda r: r["status"] not in ("queued", "running"))
        assert record["status"] == "succeeded" and record["attempts"] == 3
        events = parse(client.get(f"/task/{task_id}/events", headers=headers()).text)
        retries = [e.data for e in events if e.event == "status" and e.data["status"] == "queued"]
        assert len(retries) == 2 and retries[1]["retry_in"] == 2 * retries[0]["retry_in"]

        flaky.fail_next(1, Fault.error(400))  # the upstream refuses the request: final
        task_id = client.post(
            "/task", headers=headers(), json={"prompt": "x", "background": True}
        ).json()["id"]
        record = wait_for(client, task_id, lambda r: r["status"] not in ("queued", "running"))
        assert record["status"] == "failed" and record["attempts"] == 1
        assert record["error"]["code"] == "invalid_request"

        flaky.always = Fault.error(503)  # unavailable every time: failed after the attempts
        task_id = client.post(
            "/task", headers=headers(), json={"prompt": "x", "background": True}
        ).json()["id"]
        record = wait_for(client, task_id, lambda r: r["status"] not in ("queued", "running"))
        assert record["status"] == "failed" and record["attempts"] == 3
        assert record["error"]["code"] == "unavailable"
