"""/docs and /openapi.json: the key security scheme and the error responses are documented."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import MakeApp, headers


def _schema(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json", headers=headers())
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def test_openapi_declares_the_api_key_header_and_bearer_schemes(client: TestClient) -> None:
    schemes = _schema(client)["components"]["securitySchemes"]

    assert schemes["APIKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "One of the keys configured in API_KEYS (or ADMIN_API_KEYS).",
    }
    assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"


def test_protected_operations_require_the_key_and_probes_do_not(client: TestClient) -> None:
    paths = _schema(client)["paths"]

    for path, method in [
        ("/task", "post"),
        ("/query", "get"),
        ("/query/{task_id}", "get"),
        ("/providers", "get"),
        ("/metrics", "get"),
        ("/v1/chat/completions", "post"),
        ("/v1/models", "get"),
    ]:
        # Either scheme admits a request (OpenAPI: a list of alternatives).
        assert paths[path][method]["security"] == [{"APIKey": []}, {"Bearer": []}], path
    for probe in ("/healthz", "/readyz"):
        assert "security" not in paths[probe]["get"]


def test_task_documents_its_error_responses_in_the_error_shape(client: TestClient) -> None:
    responses = _schema(client)["paths"]["/task"]["post"]["responses"]

    assert {"400", "401", "413", "422", "429", "500", "502", "503", "504"} <= set(responses)
    ref = responses["429"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ErrorBody")


def test_docs_page_needs_the_key_unless_public_docs(make_app: MakeApp) -> None:
    with make_app() as private:
        closed = private.get("/docs")
        opened_with_key = private.get("/docs", headers=headers())
    with make_app(public_docs=True) as public:
        open_docs = public.get("/docs")
        open_schema = public.get("/openapi.json")

    assert closed.status_code == 401
    assert opened_with_key.status_code == 200
    assert "swagger" in opened_with_key.text.lower()
    assert open_docs.status_code == 200
    assert open_schema.status_code == 200
