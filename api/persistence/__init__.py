"""Durable task history: SQLAlchemy 2 async on SQLite (default) or PostgreSQL.

`open_store(url)` parses the URL, builds the engine, applies migrations (or checks them) and
returns a `TaskStore`. The contract types live in `records.py`.
"""

from __future__ import annotations

from api.persistence.engine import DatabaseTarget, parse_database_url
from api.persistence.records import Page, QueryFilters, TaskRecord, TaskStatus, TaskStore
from api.persistence.schema import SchemaOutOfDateError
from api.persistence.store import DuplicateTaskError, SqlTaskStore, StoreError

__all__ = [
    "DatabaseTarget",
    "DuplicateTaskError",
    "Page",
    "QueryFilters",
    "SchemaOutOfDateError",
    "SqlTaskStore",
    "StoreError",
    "TaskRecord",
    "TaskStatus",
    "TaskStore",
    "migrate",
    "open_store",
    "parse_database_url",
]


async def open_store(database_url: str, *, migrate: bool = True) -> SqlTaskStore:
    """Open the history store at `database_url`.

    With `migrate=True` the schema is brought to the newest revision first (safe when several
    instances start at once); with `migrate=False` it must already be there
    (`reasoning-agent migrate`), else SchemaOutOfDateError. A bad URL is a ValueError.
    """
    from api.persistence import schema
    from api.persistence.engine import create_engine, create_sqlite_writer_engine

    target = parse_database_url(database_url)
    engine = create_engine(target)
    try:
        if migrate:
            await schema.upgrade(engine, target)
        else:
            await schema.check_at_head(engine, target)
    except BaseException:
        await engine.dispose()
        raise
    return SqlTaskStore(engine, target, sync_writer=create_sqlite_writer_engine(target))


async def migrate(database_url: str) -> str:
    """Apply migrations to `database_url` and return the revision it is now at."""
    from api.persistence import schema
    from api.persistence.engine import create_engine

    target = parse_database_url(database_url)
    engine = create_engine(target)
    try:
        await schema.upgrade(engine, target)
        revision = await schema.current_revision(engine)
    finally:
        await engine.dispose()
    return revision or "none"
