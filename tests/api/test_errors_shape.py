"""One JSON error shape everywhere, with the documented status and code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import MakeApp, headers, run_task


def _assert_shape(body: dict[str, object], code: str) -> None:
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert {"message", "type", "code"} <= set(error)
    assert error["code"] == code


def test_unknown_route_is_404_json(client: TestClient) -> None:
    response = client.get("/nowhere", headers=headers())

    assert response.status_code == 404
    _assert_shape(response.json(), "not_found")


def test_wrong_method_is_405_json(client: TestClient) -> None:
    response = client.delete("/task", headers=headers())

    assert response.status_code == 405
    _assert_shape(response.json(), "method_not_allowed")


def test_unknown_task_id_is_404_json(client: TestClient) -> None:
    response = client.get("/query/01234567890123456789012345678901", headers=headers())

    assert response.status_code == 404
    _assert_shape(response.json(), "task_not_found")


def test_invalid_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/task", headers={**headers(), "Content-Type": "application/json"}, content=b'{"prompt"'
    )

    assert response.status_code == 400
    _assert_shape(response.json(), "invalid_json")


def test_validation_error_is_422_naming_the_field(client: TestClient) -> None:
    response = run_task(client, temperature="hot")

    assert response.status_code == 422
    _assert_shape(response.json(), "validation_error")
    assert "temperature" in response.json()["error"]["message"]


def test_oversized_body_is_413(make_app: MakeApp) -> None:
    with make_app(max_body_bytes=2048) as client:
        response = run_task(client, prompt="x" * 4096)

    assert response.status_code == 413
    _assert_shape(response.json(), "request_too_large")


def test_oversized_chunked_body_is_413(make_app: MakeApp) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the size shows only while reading
        yield b'{"prompt": "'
        for _ in range(8):
            yield b"x" * 1024
        yield b'"}'

    with make_app(max_body_bytes=2048) as client:
        response = client.post(
            "/task", headers={**headers(), "Content-Type": "application/json"}, content=chunks()
        )

    assert response.status_code == 413
    _assert_shape(response.json(), "request_too_large")


def test_invalid_cursor_is_400(client: TestClient) -> None:
    response = client.get("/query?cursor=not-a-cursor", headers=headers())

    assert response.status_code == 400
    _assert_shape(response.json(), "invalid_cursor")


@pytest.mark.allow_internal_errors  # the route fails the way a bug would, on purpose
def test_unexpected_error_is_500_with_request_id_and_no_stack_trace(make_app: MakeApp) -> None:
    async def explode() -> None:
        raise RuntimeError("secret internals at /srv/app.py line 42")

    with make_app() as client:
        app = client.app
        assert isinstance(app, FastAPI)
        app.add_api_route("/explode", explode)  # a route that fails the way a bug would
        response = client.get("/explode")

    assert response.status_code == 500
    _assert_shape(response.json(), "internal_error")
    error = response.json()["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


def test_every_response_has_a_request_id_and_a_given_one_is_kept(client: TestClient) -> None:
    generated = client.get("/healthz")
    given = client.get("/healthz", headers={"X-Request-ID": "trace-123"})

    assert len(generated.headers["x-request-id"]) == 32
    assert given.headers["x-request-id"] == "trace-123"
