"""`Authorization: Bearer <key>`: the same keys as X-API-Key on every endpoint (the OpenAI SDKs
send Bearer), the same key id and rate-limit budget, and 401 when the two headers disagree."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN_KEY, KEY_A, KEY_B, MakeApp, headers, key_id

PROTECTED = [
    ("POST", "/task"),
    ("GET", "/query"),
    ("GET", "/providers"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _body(method: str, path: str) -> dict[str, object] | None:
    if path == "/task":
        return {"prompt": "hi"}
    if path.startswith("/v1/chat"):
        return {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    return None


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_bearer_key_opens_every_protected_endpoint(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path, headers=bearer(KEY_A), json=_body(method, path))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_wrong_bearer_key_is_401_with_a_bearer_challenge(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path, headers=bearer("not-a-key"), json=_body(method, path))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["www-authenticate"] == (
        'Bearer realm="ReasoningAgent", error="invalid_token"'
    )


def test_no_key_at_all_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/query")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
    assert response.headers["www-authenticate"] == 'Bearer realm="ReasoningAgent"'


def test_the_scheme_name_is_case_insensitive(client: TestClient) -> None:
    assert client.get("/query", headers={"Authorization": f"bearer {KEY_A}"}).status_code == 200
    assert client.get("/query", headers={"Authorization": f"BEARER  {KEY_A} "}).status_code == 200


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", KEY_A])
def test_other_schemes_and_empty_tokens_present_no_key(
    client: TestClient, authorization: str
) -> None:
    response = client.get("/query", headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"


def test_both_headers_with_the_same_key_are_fine(client: TestClient) -> None:
    assert client.get("/query", headers={**headers(KEY_A), **bearer(KEY_A)}).status_code == 200


@pytest.mark.parametrize(
    ("x_api_key", "authorization"),
    [
        (KEY_A, f"Bearer {KEY_B}"),
        (KEY_A, "Bearer nope"),
        ("nope", f"Bearer {KEY_A}"),
        (KEY_A, "Bearer"),
        # Credentials of another scheme (say for a proxy in front) are not ours to ignore.
        (KEY_A, "Basic dXNlcjpwYXNz"),
        (KEY_A, KEY_A),
    ],
)
def test_both_headers_with_different_credentials_are_401(
    client: TestClient, x_api_key: str, authorization: str
) -> None:
    response = client.get("/query", headers={**headers(x_api_key), "Authorization": authorization})

    assert response.status_code == 401
    assert response.json()["error"] == {
        "message": (
            "X-API-Key and Authorization carry different credentials: send the key in one of "
            "them, or the same key in both (Authorization: Bearer <key>)"
        ),
        "type": "authentication_error",
        "code": "conflicting_api_keys",
    }
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_a_malformed_body_with_conflicting_keys_is_401_not_a_body_error(
    client: TestClient,
) -> None:
    response = client.post(
        "/task",
        headers={**headers(KEY_A), **bearer(KEY_B), "Content-Type": "application/json"},
        content=b"{not json",
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "conflicting_api_keys"


def test_one_budget_per_key_whichever_header_carries_it(make_app: MakeApp) -> None:
    with make_app(rate_limit="3/minute") as client:
        first = client.get("/providers", headers=headers(KEY_A))
        second = client.get("/providers", headers=bearer(KEY_A))
        third = client.get("/providers", headers={**headers(KEY_A), **bearer(KEY_A)})
        fourth = client.get("/providers", headers=bearer(KEY_A))
        other_key = client.get("/providers", headers=bearer(KEY_B))

    assert [r.headers["x-ratelimit-remaining"] for r in (first, second, third)] == ["2", "1", "0"]
    assert fourth.status_code == 429 and "retry-after" in fourth.headers
    assert fourth.json()["error"]["code"] == "rate_limit_exceeded"
    assert other_key.status_code == 200


def test_a_task_made_with_a_bearer_key_is_that_keys_task(client: TestClient) -> None:
    made = client.post("/task", headers=bearer(KEY_A), json={"prompt": "hi"}).json()

    record = client.get(f"/query/{made['id']}", headers=headers(KEY_A)).json()
    assert record["key_id"] == key_id(KEY_A, client.app.state.settings)  # type: ignore[attr-defined]
    assert client.get(f"/query/{made['id']}", headers=bearer(KEY_B)).status_code == 404
    assert client.get(f"/query/{made['id']}", headers=bearer(ADMIN_KEY)).status_code == 200


def test_conflicting_keys_are_counted_as_auth_failures(client: TestClient) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def conflicting() -> float:
        text = client.get("/metrics", headers=bearer(ADMIN_KEY)).text
        for family in text_string_to_metric_families(text):
            if family.name == "reasoning_agent_auth_failures":
                for sample in family.samples:
                    if sample.name.endswith("_total") and sample.labels["reason"] == "conflicting":
                        return sample.value
        return 0.0

    before = conflicting()
    client.get("/query", headers={**headers(KEY_A), **bearer(KEY_B)})

    assert conflicting() - before == 1
