"""Engine set-up: URL normalisation, SQLite pragmas, pool choice per backend.

SQLite (the default) is a file in a data directory, opened through aiosqlite:
- `journal_mode=WAL`: readers never block the writer and the writer never blocks readers.
- `synchronous=FULL` (default): every commit fsyncs the WAL, so an acknowledged record survives
  a process kill *and* an OS crash or power cut. `NORMAL` is also durable against a process crash
  (kill -9: the committed frames are already in the WAL file, in the OS page cache) but may lose the
  last commits on an OS crash. Group commit (see `store.py`) amortises the fsync, so FULL costs
  little; a deployment that prefers NORMAL says so in the URL: `sqlite:///data/tasks.db?synchronous=normal`.
- `busy_timeout`: when several worker processes share the file, a writer waits for the lock
  (inside SQLite, in aiosqlite's thread, never in the event loop) instead of failing at once.

PostgreSQL goes through asyncpg; users may write `postgres://` or `postgresql://` (what most hosting
providers hand out) and we pick the async driver for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import orjson
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

Backend = Literal["sqlite", "postgresql"]

SQLITE_SYNCHRONOUS: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
DEFAULT_SQLITE_SYNCHRONOUS: Final = "FULL"
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed, driver-complete database URL plus the options we strip from it."""

    url: URL
    backend: Backend
    sqlite_synchronous: str = DEFAULT_SQLITE_SYNCHRONOUS
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS

    @property
    def in_memory(self) -> bool:
        return self.backend == "sqlite" and self.url.database in (None, "", ":memory:")

    def safe(self) -> str:
        """The URL for logs and errors: the password is masked."""
        return self.url.render_as_string(hide_password=True)


def parse_database_url(database_url: str) -> DatabaseTarget:
    """Normalise a user-supplied URL to an async driver; raise ValueError with a clean message."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        # Never echo the URL itself: it may carry a password.
        raise ValueError("DATABASE_URL is not a valid database URL") from None

    backend_name, _, driver = url.drivername.partition("+")
    if backend_name in ("postgres", "postgresql"):
        if driver not in ("", "asyncpg"):
            raise ValueError(
                f"DATABASE_URL driver {driver!r} is not supported for PostgreSQL; "
                "use postgresql:// (asyncpg is used)"
            )
        query = dict(url.query)
        # libpq spells it sslmode; asyncpg takes the same values under `ssl`.
        if "sslmode" in query:
            query["ssl"] = query.pop("sslmode")
        return DatabaseTarget(
            url=url.set(drivername="postgresql+asyncpg", query=query), backend="postgresql"
        )

    if backend_name == "sqlite":
        if driver not in ("", "aiosqlite"):
            raise ValueError(
                f"DATABASE_URL driver {driver!r} is not supported for SQLite; "
                "use sqlite:///path/to/file.db (aiosqlite is used)"
            )
        query = dict(url.query)
        synchronous = str(query.pop("synchronous", DEFAULT_SQLITE_SYNCHRONOUS)).upper()
        if synchronous not in SQLITE_SYNCHRONOUS:
            raise ValueError(
                f"synchronous={synchronous.lower()} is not a SQLite synchronous mode; "
                f"choose one of {', '.join(m.lower() for m in SQLITE_SYNCHRONOUS)}"
            )
        busy_raw = query.pop("busy_timeout_ms", str(DEFAULT_BUSY_TIMEOUT_MS))
        try:
            busy_timeout_ms = int(str(busy_raw))
        except ValueError:
            raise ValueError("busy_timeout_ms must be an integer (milliseconds)") from None
        database = url.database
        if database and database != ":memory:":
            database = os.path.expanduser(database)  # SQLite itself would not expand `~`
        return DatabaseTarget(
            url=url.set(drivername="sqlite+aiosqlite", query=query, database=database),
            backend="sqlite",
            sqlite_synchronous=synchronous,
            busy_timeout_ms=busy_timeout_ms,
        )

    raise ValueError(
        f"DATABASE_URL scheme {url.drivername!r} is not supported; "
        "use sqlite:///path/to/file.db or postgresql://user:pass@host/db"
    )


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (params, votes, trace ...) through orjson rather than the standard library's
# json: every task writes its trace, and json.dumps was a measurable part of a request's CPU.
# Strings reach it already made storable (`api.persistence.store._storable`).
_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def create_engine(target: DatabaseTarget) -> AsyncEngine:
    """Build the async engine with the pool and per-connection settings each backend needs."""
    if target.backend == "postgresql":
        # A normal pool: PostgreSQL handles concurrent writers itself. pre_ping survives a
        # database restart without failing the first request after it.
        # asyncpg waits 60 s for a connection by default: too long for a readiness probe or a
        # request; the URL's own `?timeout=` wins.
        connect_args = {} if "timeout" in target.url.query else {"timeout": 5.0}
        return create_async_engine(
            target.url,
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
            connect_args=connect_args,
            **_JSON_CODEC,
        )

    kwargs: dict[str, Any] = {}
    if target.in_memory:
        # Every new connection to :memory: would be a new, empty database: share one (tests only).
        kwargs["poolclass"] = StaticPool
    else:
        database = target.url.database
        assert database is not None
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Readers run in parallel (WAL); the store funnels all writes through one writer task,
        # so the pool never holds two writers from this process.
        kwargs.update(pool_size=8, max_overflow=0)
    engine = create_async_engine(target.url, **kwargs, **_JSON_CODEC)
    _configure_sqlite(engine.sync_engine, target)
    return engine


def create_sqlite_writer_engine(target: DatabaseTarget) -> Engine | None:
    """A synchronous engine for the store's writer thread (file SQLite only, else None).

    Through aiosqlite a one-row transaction makes four trips between the event loop and the
    driver's thread (BEGIN, INSERT, COMMIT, pool reset), each with future and greenlet overhead;
    the same transaction run whole in one dedicated thread costs half the CPU and half the
    latency (measured: bench/service_bench.py). Same file, same pragmas, same column types.
    """
    if target.backend != "sqlite" or target.in_memory:
        return None
    url = target.url.set(drivername="sqlite+pysqlite")
    # One thread writes; the pool holds its one connection (created and closed in that thread).
    engine = sa_create_engine(url, pool_size=1, max_overflow=0, **_JSON_CODEC)
    _configure_sqlite(engine, target)
    return engine


def _configure_sqlite(engine: Engine, target: DatabaseTarget) -> None:
    journal_mode = "MEMORY" if target.in_memory else "WAL"

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Python's sqlite3 opens transactions only before DML, so DDL would run outside them.
        # Turn its handling off and let SQLAlchemy say BEGIN (the recipe in SQLAlchemy's SQLite
        # docs): migrations become atomic, and a transaction is exactly what the code says.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA journal_mode={journal_mode}")
            cursor.execute(f"PRAGMA synchronous={target.sqlite_synchronous}")
            cursor.execute(f"PRAGMA busy_timeout={int(target.busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")
