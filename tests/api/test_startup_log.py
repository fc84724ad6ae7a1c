"""What `reasoning-agent serve` logs when it starts: what an operator needs, not alembic's set-up.

Alembic logs a "setup plugin ..." line per autogenerate plugin (seven of them) and its migration
context at INFO on every start. Those stay below the service's INFO level; the one-line "ready"
message stays, and a migration actually applied is worth one INFO line of ours. LOG_LEVEL=DEBUG
brings alembic's details back.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from tests.api.conftest import Server, server_env

READY = " INFO    api ready: default provider echo (available)"
MIGRATED = " INFO    api.persistence.migrations database schema migrated: empty -> 0001"


def _startup_log(serve: Callable[..., Server], env: dict[str, str]) -> list[str]:
    """Starts the server, stops it once it is ready, and returns its log lines."""
    server = serve(env)
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=30)
    return server.output().splitlines()


def _alembic_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if " alembic" in line]


def test_start_logs_the_ready_line_and_one_migration_line_and_no_alembic_chatter(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    lines = _startup_log(serve, server_env(tmp_path))  # LOG_LEVEL=INFO, a fresh SQLite file

    assert not [line for line in lines if "setup plugin" in line], lines
    assert _alembic_lines(lines) == []
    assert [line for line in lines if READY in line], lines
    assert len([line for line in lines if MIGRATED in line]) == 1, lines


def test_a_start_without_pending_migrations_logs_no_migration_line(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    env = server_env(tmp_path)
    _startup_log(serve, env)  # creates and migrates the database

    lines = _startup_log(serve, env)

    assert [line for line in lines if READY in line], lines
    assert not [line for line in lines if "migrat" in line], lines
    assert _alembic_lines(lines) == []


def test_log_level_debug_brings_alembic_details_back(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    lines = _startup_log(serve, server_env(tmp_path, LOG_LEVEL="DEBUG"))

    assert len([line for line in lines if "alembic.runtime.plugins setup plugin" in line]) > 0
    assert [line for line in lines if "alembic.runtime.migration Running upgrade" in line]
    assert [line for line in lines if READY in line], lines
