"""Apply or check the schema: Alembic upgrade under a cross-process lock.

Several instances may start at once against one database (replicas, `--workers N`). Without a
lock two of them would both see an empty database and both try to create the tables. PostgreSQL:
a transaction-scoped advisory lock; the whole upgrade runs in that one transaction (PostgreSQL has
transactional DDL), so the second instance waits, then finds the schema at head and does nothing.
SQLite: an exclusive `flock` on a file beside the database (SQLite is single-host by nature).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from api.persistence.engine import DatabaseTarget

# Any fixed 64-bit number, the same in every instance: "ReasoningAgent migrations".
_PG_ADVISORY_LOCK_KEY: Final = 0x5241_6D69_6772_0001


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the revision this version of the code needs."""


def alembic_config() -> Config:
    """Alembic configuration from code: the scripts live inside the installed `api` package."""
    config = Config()
    config.set_main_option("script_location", "api.persistence:migrations")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migration scripts found"
    return head


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade_locked(connection: Connection, backend: str) -> None:
    if backend == "postgresql":
        # Opens the transaction the migrations then run in; released at COMMIT.
        lock = text("SELECT pg_advisory_xact_lock(:key)")
        connection.execute(lock, {"key": _PG_ADVISORY_LOCK_KEY})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@contextlib.asynccontextmanager
async def _sqlite_file_lock(target: DatabaseTarget) -> AsyncIterator[None]:
    if target.in_memory:
        yield
        return
    # Blocking open + flock in a thread, not in the event loop.
    fd = await asyncio.to_thread(_acquire_file_lock, target)
    try:
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _acquire_file_lock(target: DatabaseTarget) -> int:
    database = target.url.database
    assert database is not None
    path = Path(database)
    fd = os.open(path.with_name(path.name + ".migrate-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


async def upgrade(engine: AsyncEngine, target: DatabaseTarget) -> None:
    """Bring the database to the newest revision; safe to run concurrently and repeatedly."""
    lock = _sqlite_file_lock(target) if target.backend == "sqlite" else contextlib.nullcontext()
    async with lock, engine.connect() as connection:
        await connection.run_sync(_upgrade_locked, target.backend)
        await connection.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


async def check_at_head(engine: AsyncEngine, target: DatabaseTarget) -> None:
    """Raise SchemaOutOfDateError unless the database is at head (when migrate=False)."""
    current = await current_revision(engine)
    head = head_revision()
    if current != head:
        raise SchemaOutOfDateError(
            f"the database at {target.safe()} is at schema revision {current or 'none'}, "
            f"this version needs {head}: run `reasoning-agent migrate`"
        )
