"""Alembic environment, configured from code (no alembic.ini).

The usual path is `api.persistence.schema.upgrade()`, which hands us an open connection in
`config.attributes["connection"]` (Alembic's "sharing a connection" recipe) after taking the
cross-process migration lock. Run standalone (`alembic` with a Config naming this directory), we
build an async engine from `sqlalchemy.url` or `DATABASE_URL` ourselves.

Alembic's own INFO records (the migration context, "Running upgrade ...") are below the level
api.logging gives its loggers unless LOG_LEVEL=DEBUG; each migration step that actually runs is
logged here instead, once, at INFO. A start on a database already at head logs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script
from sqlalchemy.engine import Connection

from api.persistence.engine import create_engine, parse_database_url
from api.persistence.models import metadata

config = context.config
log = logging.getLogger("api.persistence.migrations")


def _log_step(
    ctx: MigrationContext,
    step: MigrationInfo,
    heads: Collection[Any],
    run_args: Mapping[str, Any],
) -> None:
    """One INFO line per migration step run (after its operations, inside its transaction)."""
    if not step.is_migration:
        return
    source = ", ".join(step.source_revision_ids) or "empty"
    destination = ", ".join(step.destination_revision_ids) or "empty"
    revision = step.up_revision
    doc = ((revision.doc if isinstance(revision, Script) else None) or "").strip().rstrip(".")
    log.info(
        "database schema %s: %s -> %s%s",
        "migrated" if step.is_upgrade else "downgraded",
        source,
        destination,
        f" ({doc})" if doc else "",
    )


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
        on_version_apply=_log_step,
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
