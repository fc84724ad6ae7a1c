"""/healthz and /readyz: open, and they reveal nothing but status."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from providers import load_settings
from tests.api.conftest import MakeApp, write_plugins_toml


def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_database_limits_and_default_provider_are(
    client: TestClient,
) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "rate_limit_store": "ok", "default_provider": "ok"},
    }


def test_readyz_is_503_when_the_default_provider_cannot_serve(
    make_app: MakeApp, tmp_path: Path
) -> None:
    config = write_plugins_toml(tmp_path, 'default_provider = "openai"\n')  # no OPENAI_API_KEY
    with make_app(providers=load_settings(config)) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    assert response.json()["checks"]["default_provider"] == "failed"
    assert "OPENAI_API_KEY" not in response.text


def test_probes_reveal_no_versions_or_names(client: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        text = client.get(path).text
        for secretish in ("echo", "sqlite", "0.1", "memory", "redis"):
            assert secretish not in text
