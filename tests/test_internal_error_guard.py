"""The guard of tests/conftest.py, proven on a pytest run of its own: an unhandled error the
test did not expect fails it; the marker, or accepting that request's records, allows it; an
xfail stays an xfail; an error logged during teardown fails the teardown. And the server-log
scan of the `serve` fixture recognises what a server writes for an unhandled error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.api.conftest import unhandled_errors

REPO_ROOT = Path(__file__).resolve().parents[1]

INNER_TESTS = """
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware


def client():
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=1024)

    @app.get("/bug")
    async def bug():
        raise RuntimeError("a bug")

    @app.get("/fine")
    async def fine():
        return {"ok": True}

    return TestClient(app, raise_server_exceptions=False)


def test_unexpected():
    assert client().get("/bug").status_code == 500


@pytest.mark.allow_internal_errors
def test_marked():
    assert client().get("/bug").status_code == 500


def test_accepted(api_error_log):
    response = client().get("/bug")
    assert [r.getMessage() for r in api_error_log.accept(response.headers["x-request-id"])]


def test_accepting_another_request(api_error_log):
    app = client()
    api_error_log.accept(app.get("/fine").headers["x-request-id"])
    app.get("/bug")


@pytest.mark.xfail(strict=True)
def test_xfail():
    assert client().get("/bug").status_code == 200


def test_clean():
    assert client().get("/fine").status_code == 200


@pytest.fixture
def bug_at_teardown():
    yield
    client().get("/bug")


def test_teardown(bug_at_teardown):
    pass
"""


def test_the_guard_fails_exactly_the_tests_with_unexpected_unhandled_errors(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    plugins = ["-p", "tests.conftest", "-p", "no:cacheprovider"]
    quiet = ["-q", "-rA", "-W", "ignore::pytest.PytestUnknownMarkWarning"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, *quiet, "test_inner.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    outcomes = {
        (match["outcome"], match["test"])
        for match in re.finditer(
            r"^(?P<outcome>PASSED|FAILED|ERROR|XFAIL|XPASS) test_inner\.py::(?P<test>\w+)",
            run.stdout,
            re.MULTILINE,
        )
    }

    assert outcomes == {
        ("FAILED", "test_unexpected"),
        ("PASSED", "test_marked"),
        ("PASSED", "test_accepted"),
        ("FAILED", "test_accepting_another_request"),
        ("XFAIL", "test_xfail"),
        ("PASSED", "test_clean"),
        ("PASSED", "test_teardown"),
        ("ERROR", "test_teardown"),
    }, run.stdout + run.stderr
    assert "unhandled error answering GET /bug: RuntimeError: a bug" in run.stdout


def test_the_server_log_scan_finds_unhandled_errors_in_either_log_format() -> None:
    log = textwrap.dedent(
        """\
        2026-01-01T00:00:00.000Z INFO    api ready: default provider echo (available)
        2026-01-01T00:00:01.000Z INFO    api.access [abc] POST /task 200 3.1ms
        2026-01-01T00:00:02.000Z ERROR   api.error [def] unhandled error answering POST /task
        {"ts": "2026-01-01T00:00:03Z", "level": "ERROR", "logger": "api.error", "message": "x"}
        2026-01-01T00:00:04.000Z ERROR   uvicorn.error Exception in ASGI application
        {"ts": "2026-01-01T00:00:05Z", "level": "INFO", "logger": "api.access", "message": "ok"}
        """
    )

    found = unhandled_errors(log)

    assert len(found) == 3
    assert all("api.access" not in line and "ready" not in line for line in found)
