"""Fixtures for the REST service tests: apps on real SQLite files, real servers, real Redis.

- `make_app(**settings)`: a context manager giving a `TestClient` whose lifespan has run (the
  history store open on a fresh SQLite file, the registry loaded from a test plugins.toml).
- `serve(env)`: a real `reasoning-agent serve` (or `uvicorn api.main:app`) subprocess on a free
  loopback port, stopped at the end of the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.app import create_app
from api.config import ServiceSettings
from api.security import KeyRing
from providers import ProvidersSettings, load_settings

KEY_A = "test-key-alpha-0001"
KEY_B = "test-key-bravo-0002"
ADMIN_KEY = "test-admin-key-0003"
REDIS_URL = "redis://127.0.0.1:6379/0"
REPO_ROOT = Path(__file__).resolve().parents[2]

MakeApp = Callable[..., contextlib.AbstractContextManager[TestClient]]


def headers(key: str = KEY_A) -> dict[str, str]:
    return {"X-API-Key": key}


def key_id(key: str, settings: ServiceSettings | None = None) -> str:
    base = settings or ServiceSettings(api_keys=[key])
    return KeyRing(base).key_id(key)


def unique_prefix() -> str:
    """A Redis key namespace of its own, so runs and tests never share a budget."""
    return f"test-ra-{uuid.uuid4().hex[:12]}"


def write_plugins_toml(directory: Path, text: str = 'default_provider = "echo"\n') -> Path:
    path = directory / "plugins.toml"
    path.write_text(text)
    return path


def service_settings(tmp_path: Path, **overrides: Any) -> ServiceSettings:
    """Explicit settings: nothing of the test process's environment leaks in."""
    base: dict[str, Any] = {
        "api_keys": [KEY_A, KEY_B],
        "admin_api_keys": [ADMIN_KEY],
        "data_dir": tmp_path / "data",
        "database_url": f"sqlite:///{tmp_path / 'data' / 'history.db'}",
        "rate_limit": "60/minute",
        "rate_limit_storage_uri": None,
        "redis_url": None,
        "rate_limit_key_prefix": unique_prefix(),
        "log_level": "WARNING",
        "public_docs": False,
    }
    return ServiceSettings(**{**base, **overrides})


@pytest.fixture(autouse=True)
def _no_real_upstreams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never a real LLM API: provider credentials and endpoints from the developer's shell are
    removed; tests that need a provider point it at a local mock upstream."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_", "REASONING_AGENT_")):
            monkeypatch.delenv(name)


@pytest.fixture
def providers_settings(tmp_path: Path) -> ProvidersSettings:
    """Echo is the default provider: the tests run offline."""
    return load_settings(write_plugins_toml(tmp_path))


@pytest.fixture
def make_app(tmp_path: Path, providers_settings: ProvidersSettings) -> MakeApp:
    @contextlib.contextmanager
    def running(
        providers: ProvidersSettings | None = None, **overrides: Any
    ) -> Iterator[TestClient]:
        settings = service_settings(tmp_path, **overrides)
        app = create_app(settings, providers or providers_settings)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    return running


@pytest.fixture
def client(make_app: MakeApp) -> Iterator[TestClient]:
    with make_app() as test_client:
        yield test_client


def run_task(client: TestClient, key: str = KEY_A, **body: Any) -> httpx2.Response:
    """POST /task through the TestClient (whose responses are httpx2's)."""
    body.setdefault("prompt", "Hello, world!")
    return client.post("/task", headers=headers(key), json=body)


# --- real servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Server:
    """A service subprocess on 127.0.0.1."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_env(tmp_path: Path, **env: str) -> dict[str, str]:
    """A clean environment for a server: test keys, its own data dir and plugins.toml."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REASONING_AGENT_", "OPENAI_", "ANTHROPIC_", "PROMETHEUS_"))
        and key not in {"API_KEYS", "ADMIN_API_KEYS", "RATE_LIMIT", "REDIS_URL", "DATABASE_URL"}
    }
    base.update(
        {
            "API_KEYS": f"{KEY_A},{KEY_B}",
            "ADMIN_API_KEYS": ADMIN_KEY,
            "DATA_DIR": str(tmp_path / "server-data"),
            "REASONING_AGENT_CONFIG": str(write_plugins_toml(tmp_path)),
            "RATE_LIMIT_KEY_PREFIX": unique_prefix(),
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    base.update(env)
    return base


# What a server writes when a request hit a bug: our middleware's `api.error` line (text or JSON
# log format), or uvicorn's when an exception escaped the app altogether.
UNHANDLED_ERROR_LINE = re.compile(
    r"\bapi\.error\b|unhandled error answering|Exception in ASGI application"
)


def unhandled_errors(output: str) -> list[str]:
    """The lines of a server's log that report an unhandled error."""
    return [line for line in output.splitlines() if UNHANDLED_ERROR_LINE.search(line)]


@pytest.fixture
def serve(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Server]]:
    """Starts servers: `serve(env, port=..., command=[...])`; all are stopped afterwards.

    Afterwards each server's log is scanned: an unhandled error fails the test, unless it is
    marked `allow_internal_errors` (the same rule as for in-process apps, tests/conftest.py)."""
    servers: list[Server] = []

    def start(
        env: dict[str, str] | None = None,
        *,
        port: int | None = None,
        args: list[str] | None = None,
        uvicorn: bool = False,
        wait: bool = True,
    ) -> Server:
        port = port or free_port()
        if uvicorn:
            command = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)]
        else:
            command = [
                sys.executable,
                "-c",
                "from api.cli import main; raise SystemExit(main())",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
        command += args or []
        log = tmp_path / f"server-{len(servers)}-{port}.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env if env is not None else server_env(tmp_path),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        server = Server(process, port, log)
        servers.append(server)
        if wait:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()
    if request.node.get_closest_marker("allow_internal_errors") is None:
        found = [
            f"  {server.log.name}: {line}"
            for server in servers
            for line in unhandled_errors(server.output())
        ]
        if found:
            pytest.fail(
                "a server logged unhandled errors; fix the bug, or mark the test "
                "@pytest.mark.allow_internal_errors if it provokes one on purpose:\n"
                + "\n".join(found),
                pytrace=False,
            )


# --- PostgreSQL (history store tests) -----------------------------------------------------------
# The real server on 127.0.0.1:5432 (RA_TEST_POSTGRES_URL to point elsewhere). Tests work in
# throw-away databases created here and dropped afterwards, so runs never see each other's rows
# and the shared `test` database stays clean.

PG_ADMIN_URL = os.environ.get("RA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg_admin(sql: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from api.persistence import parse_database_url

    url = parse_database_url(PG_ADMIN_URL).url
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


def create_pg_database() -> str:
    """A new empty database on the test server; returns its URL."""
    name = f"ra_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """One PostgreSQL database for the session; tests empty the tables they use."""
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def fresh_pg_database_url() -> Iterator[str]:
    """An empty PostgreSQL database for one test (migrations need a blank slate)."""
    url = create_pg_database()
    yield url
    drop_pg_database(url)
