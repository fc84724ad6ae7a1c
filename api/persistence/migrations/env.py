"""Alembic environment, configured from code (no alembic.ini).

The usual path is `api.persistence.schema.upgrade()`, which hands us an open connection in
`config.attributes["connection"]` (Alembic's "sharing a connection" recipe) after taking the
cross-process migration lock. Run standalone (`alembic` with a Config naming this directory), we
build an async engine from `sqlalchemy.url` or `DATABASE_URL` ourselves.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from api.persistence.engine import create_engine, parse_database_url
from api.persistence.models import metadata

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # Our SQLite engine emits BEGIN itself (engine.py), so DDL there is transactional too:
        # a migration interrupted half-way leaves the schema as it was.
        transactional_ddl=True,
        compare_type=True,
    )


def _run_with_connection(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(database_url: str) -> None:
    engine = create_engine(parse_database_url(database_url))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_with_connection)
            await connection.commit()
    finally:
        await engine.dispose()


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL (or sqlalchemy.url) to run migrations")
    return url


if context.is_offline_mode():
    context.configure(
        url=parse_database_url(_database_url()).url,
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    shared = config.attributes.get("connection")
    if shared is not None:
        _run_with_connection(shared)
    else:
        asyncio.run(_run_with_own_engine(_database_url()))
