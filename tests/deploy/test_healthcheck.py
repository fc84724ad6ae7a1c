"""The image's HEALTHCHECK script (deploy/docker/healthcheck.py) against a real HTTP server."""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "healthcheck.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ra_container_healthcheck", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load()


def _serve(status: int) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = status if self.path == "/healthz" else 404
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _port_without_listener() -> int:
    """A loopback port that was free a moment ago; nothing listens on it now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def healthy_port() -> Iterator[int]:
    yield from _serve(200)


@pytest.fixture
def unhealthy_port() -> Iterator[int]:
    yield from _serve(503)


def test_a_server_answering_healthz_is_healthy(
    healthy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", str(healthy_port))
    assert healthcheck.main() == 0


def test_a_server_answering_503_is_unhealthy(
    unhealthy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", str(unhealthy_port))
    assert healthcheck.main() == 1


def test_no_server_is_unhealthy_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", str(_port_without_listener()))
    assert healthcheck.main() == 1
    assert capsys.readouterr().err.startswith("healthcheck: ")


def test_a_wildcard_bind_address_is_probed_through_loopback(
    healthy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", str(healthy_port))
    assert healthcheck.healthz_url() == f"http://127.0.0.1:{healthy_port}/healthz"
    assert healthcheck.main() == 0


def test_the_image_defaults_are_probed_without_any_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    assert healthcheck.healthz_url() == "http://127.0.0.1:8000/healthz"


def test_an_ipv6_bind_address_is_bracketed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "::1")
    monkeypatch.setenv("PORT", "8000")
    assert healthcheck.healthz_url() == "http://[::1]:8000/healthz"


def test_a_worker_container_is_probed_on_healthcheck_port(
    healthy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "8000")
    monkeypatch.setenv("HEALTHCHECK_PORT", str(healthy_port))
    assert healthcheck.healthz_url() == f"http://127.0.0.1:{healthy_port}/healthz"
    assert healthcheck.main() == 0
