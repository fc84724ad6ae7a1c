"""API-key authentication (X-API-Key): every endpoint but the probes, 401 in the one error shape.

The same keys as Bearer tokens: tests/api/test_auth_bearer.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.config import ServiceSettings, SettingsInvalid, load_service_settings
from tests.api.conftest import (
    ADMIN_KEY,
    KEY_A,
    KEY_B,
    MakeApp,
    free_port,
    headers,
    run_task,
    server_env,
)

PROTECTED = [
    ("POST", "/task"),
    ("GET", "/query"),
    ("GET", "/query/0123456789abcdef0123456789abcdef"),
    ("GET", "/providers"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_endpoint_without_key_is_401(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json={"prompt": "hi"} if method == "POST" else None)

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": (
                "missing API key: send it in the X-API-Key header or as Authorization: Bearer <key>"
            ),
            "type": "authentication_error",
            "code": "missing_api_key",
        }
    }


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_endpoint_with_wrong_key_is_401(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(
        method,
        path,
        headers=headers("not-a-key"),
        json={"prompt": "hi"} if method == "POST" else None,
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_are_open_without_a_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("key", [KEY_A, KEY_B, ADMIN_KEY])
def test_every_configured_key_is_accepted(client: TestClient, key: str) -> None:
    assert run_task(client, key=key).status_code == 200


def test_a_prefix_of_a_key_is_not_a_key(client: TestClient) -> None:
    assert run_task(client, key=KEY_A[:-1]).status_code == 401


def test_malformed_body_without_a_key_is_401_not_a_body_error(client: TestClient) -> None:
    response = client.post(
        "/task", headers={"Content-Type": "application/json"}, content=b"{not json"
    )

    assert response.status_code == 401


def test_api_keys_tolerate_spaces_and_empty_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", " key1, key2 ,,key3, ")

    assert load_service_settings().api_keys == ["key1", "key2", "key3"]


def test_service_refuses_to_start_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", " , ")
    monkeypatch.delenv("ADMIN_API_KEYS", raising=False)

    with pytest.raises(SettingsInvalid, match="set API_KEYS"):
        load_service_settings()


def test_key_ids_are_short_hashes_that_do_not_contain_the_key() -> None:
    from api.security import KeyRing

    ring = KeyRing(ServiceSettings(api_keys=[KEY_A, KEY_B]))

    assert ring.key_id(KEY_A) != ring.key_id(KEY_B)
    assert len(ring.key_id(KEY_A)) == 16
    assert KEY_A not in ring.key_id(KEY_A)


def test_auth_failures_are_counted_by_reason(make_app: MakeApp) -> None:
    with make_app() as client:
        before = _auth_failures(client)
        client.get("/providers")
        client.get("/providers", headers=headers("wrong"))
        client.get("/providers", headers=headers("wrong"))
        after = _auth_failures(client)

    assert after["missing"] - before.get("missing", 0) == 1
    assert after["invalid"] - before.get("invalid", 0) == 2


def _auth_failures(client: TestClient) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = client.get("/metrics", headers=headers(ADMIN_KEY)).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "reasoning_agent_auth_failures":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["reason"]] = sample.value
    return counts


def _start_without_keys(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = server_env(tmp_path, API_KEYS="", ADMIN_API_KEYS="")
    return subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )


def test_serve_without_keys_exits_with_one_clear_line(tmp_path: Path) -> None:
    result = _start_without_keys(
        [sys.executable, "-c", "from api.cli import main; raise SystemExit(main())", "serve"],
        tmp_path,
    )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: config_error: no API key configured: set API_KEYS (comma-separated), "
        "e.g. API_KEYS=key1,key2"
    )


def test_uvicorn_without_keys_exits_without_a_traceback(tmp_path: Path) -> None:
    result = _start_without_keys(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(free_port())], tmp_path
    )

    assert result.returncode != 0
    assert "no API key configured" in result.stderr
    assert "Traceback" not in result.stderr
