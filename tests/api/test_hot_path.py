"""The hot path (api.hot_path) answers exactly as FastAPI's own routes do.

Every request of the table goes to two apps built from the same settings: the service as it is
(hot routes first) and the same service with its hot routes taken out, so FastAPI's routes
answer everything. Status, body (less what differs per task: ids, times) and header names must
be the same. Each row also says which path must answer it: ordinary JSON bodies the hot path,
everything else FastAPI's route after the hot path declined (or FastAPI alone, for other
methods), which the scope of the request shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from api.app import create_app
from api.hot_path import HOT_PATH, HotRoute
from providers import ProvidersSettings
from tests.api.conftest import KEY_A, service_settings

JSON = "application/json"
VOLATILE = {"id", "task_id", "created_at", "created", "latency_ms", "started_ms", "request_id"}


class ScopeRecorder:
    """The outermost ASGI layer: keeps each HTTP request's scope as the app left it."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.scopes.append(scope)
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Row:
    name: str
    path: str
    body: bytes | None
    answered_by: str  # "hot", "declined" (FastAPI after the hot path), "fastapi" (never matched)
    status: int
    content_type: str | None = JSON
    method: str = "POST"
    key: str | None = KEY_A
    extra_headers: dict[str, str] = field(default_factory=dict)


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]

ROWS = [
    Row("task", "/task", body(prompt="What is 2 + 2?"), "hot", 200),
    Row("task with its trace", "/task", body(prompt="hi", trace=True), "hot", 200),
    Row("task, cot", "/task", body(prompt="hi", strategy="cot"), "hot", 200),
    Row(
        "task, charset",
        "/task",
        body(prompt="hi"),
        "hot",
        200,
        content_type="application/json; charset=utf-8",
    ),
    Row("task streamed", "/task", body(prompt="hi", stream=True), "hot", 200),
    Row("task, unknown provider", "/task", body(prompt="hi", provider="nope"), "hot", 400),
    Row("task, no key", "/task", body(prompt="hi"), "hot", 401, key=None),
    Row("task, wrong key", "/task", body(prompt="hi"), "hot", 401, key="not-a-key"),
    Row("task, +json type", "/task", body(prompt="hi"), "declined", 200, "application/vnd.x+json"),
    Row("task, text/plain", "/task", body(prompt="hi"), "declined", 415, "text/plain"),
    Row("task, no content type", "/task", body(prompt="hi"), "declined", 415, None),
    Row("task, not JSON", "/task", b'{"prompt": ', "declined", 400),
    Row("task, invalid UTF-8", "/task", b'{"prompt": "\xff"}', "declined", 400),
    Row("task, NaN", "/task", b'{"prompt": "hi", "temperature": NaN}', "declined", 422),
    Row("task, unknown field", "/task", body(prompt="hi", tempreature=1), "declined", 422),
    Row("task, no prompt", "/task", body(), "declined", 422),
    Row("task, empty body", "/task", b"", "declined", 422),
    Row("task, a list", "/task", b"[1, 2]", "declined", 422),
    Row("task, nested deep", "/task", b"[" * 100_000 + b"]" * 100_000, "declined", 400),
    Row("task, not JSON, no key", "/task", b"{", "declined", 401, key=None),
    Row("task, invalid, no key", "/task", body(), "declined", 401, key=None),
    Row("task, GET", "/task", None, "fastapi", 405, method="GET"),
    Row("task/, trailing slash", "/task/", body(prompt="hi"), "fastapi", 307),
    Row("chat", CHAT, body(model="echo", messages=MESSAGES), "hot", 200),
    Row("chat streamed", CHAT, body(model="echo", messages=MESSAGES, stream=True), "hot", 200),
    Row("chat, no messages", CHAT, body(model="echo"), "declined", 422),
    Row(
        "chat, text/plain",
        CHAT,
        body(model="echo", messages=MESSAGES),
        "declined",
        415,
        "text/plain",
    ),
]


def _settled(value: Any) -> Any:
    """The body without what differs between two runs of the same task."""
    if isinstance(value, dict):
        return {k: _settled(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_settled(item) for item in value]
    return value


def _comparable(response: httpx2.Response) -> tuple[Any, ...]:
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        events = [line for line in response.text.splitlines() if line.startswith("event:")]
        payload: Any = events
    elif response.content:
        payload = _settled(response.json())
    else:  # a redirect
        payload = response.headers.get("location")
    names = sorted(set(response.headers.keys()) - {"content-length"})
    return response.status_code, content_type, payload, names


@pytest.fixture
def apps(tmp_path: Any, providers_settings: ProvidersSettings) -> Iterator[tuple[Any, ...]]:
    """(hot app, its recorder, FastAPI-only app): the same settings, separate histories."""
    built = []
    for name in ("hot", "fastapi"):
        settings = service_settings(tmp_path / name, rate_limit="1000/minute")
        app = create_app(settings, providers_settings)
        if name == "fastapi":
            app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, HotRoute)]
        built.append(ScopeRecorder(app))
    with (
        TestClient(built[0], raise_server_exceptions=False) as hot,
        TestClient(built[1], raise_server_exceptions=False) as plain,
    ):
        yield hot, built[0], plain


def _send(client: TestClient, row: Row) -> httpx2.Response:
    headers = dict(row.extra_headers)
    if row.key is not None:
        headers["X-API-Key"] = row.key
    if row.content_type is not None:
        headers["Content-Type"] = row.content_type
    return client.request(
        row.method, row.path, content=row.body, headers=headers, follow_redirects=False
    )


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_the_hot_path_answers_as_fastapi_does(apps: tuple[Any, ...], row: Row) -> None:
    hot, recorder, plain = apps

    answer = _send(hot, row)
    expected = _send(plain, row)

    assert answer.status_code == row.status, answer.text
    assert _comparable(answer) == _comparable(expected)
    taken = recorder.scopes[-1].get(HOT_PATH)
    assert {"hot": "answered", "declined": "declined", "fastapi": None}[row.answered_by] == taken


def test_the_hot_routes_come_first_and_are_not_in_the_openapi_document(
    apps: tuple[Any, ...],
) -> None:
    hot, recorder, _ = apps
    routes = recorder.app.router.routes
    assert [r.path for r in routes[:2]] == ["/task", CHAT]
    assert all(isinstance(r, HotRoute) for r in routes[:2])

    document = hot.get("/openapi.json", headers={"X-API-Key": KEY_A}).json()

    # Documented once each, by FastAPI's routes, with their request bodies.
    assert "requestBody" in document["paths"]["/task"]["post"]
    assert "requestBody" in document["paths"][CHAT]["post"]


def test_dependency_overrides_send_every_request_through_fastapi(apps: tuple[Any, ...]) -> None:
    hot, recorder, _ = apps
    app = recorder.app

    async def nothing() -> None:
        return None

    app.dependency_overrides[nothing] = nothing  # any override at all: FastAPI's routes answer
    try:
        answer = _send(hot, ROWS[0])
    finally:
        app.dependency_overrides.clear()

    assert answer.status_code == 200
    assert recorder.scopes[-1].get(HOT_PATH) == "declined"
