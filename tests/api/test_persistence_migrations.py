"""Alembic migrations: from empty, idempotent, concurrent starts, and in step with the models."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from api.persistence import SchemaOutOfDateError, migrate, open_store
from api.persistence.engine import create_engine, parse_database_url
from api.persistence.models import metadata
from api.persistence.schema import alembic_config, current_revision, head_revision


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/tasks.db"
    url: str = request.getfixturevalue("fresh_pg_database_url")
    return url


async def revision_of(url: str) -> str | None:
    engine = create_engine(parse_database_url(url))
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


async def table_names(url: str) -> set[str]:
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_migrate_creates_the_schema_on_an_empty_database(empty_database_url: str) -> None:
    assert await migrate(empty_database_url) == head_revision()

    assert {"tasks", "alembic_version"} <= await table_names(empty_database_url)


async def test_migrate_twice_is_a_no_op(empty_database_url: str) -> None:
    await migrate(empty_database_url)

    assert await migrate(empty_database_url) == head_revision()


async def test_open_store_migrates_by_default(empty_database_url: str) -> None:
    store = await open_store(empty_database_url)
    await store.aclose()

    assert await revision_of(empty_database_url) == head_revision()


async def test_open_store_without_migrate_refuses_an_unmigrated_database(
    empty_database_url: str,
) -> None:
    with pytest.raises(SchemaOutOfDateError, match="run `reasoning-agent migrate`"):
        await open_store(empty_database_url, migrate=False)


async def test_several_instances_starting_at_once_all_succeed(empty_database_url: str) -> None:
    # Each open_store has its own engine and connections, as separate processes would.
    stores = await asyncio.gather(*(open_store(empty_database_url) for _ in range(4)))
    for store in stores:
        await store.aclose()

    assert await revision_of(empty_database_url) == head_revision()


async def test_migrated_schema_matches_the_models(empty_database_url: str) -> None:
    await migrate(empty_database_url)

    def differences(conn: Connection) -> list[Any]:
        diff: list[Any] = compare_metadata(MigrationContext.configure(conn), metadata)
        return diff

    engine = create_engine(parse_database_url(empty_database_url))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
    finally:
        await engine.dispose()

    assert diff == []


async def test_a_migration_that_fails_half_way_leaves_the_database_unchanged(
    empty_database_url: str,
) -> None:
    # An unrelated index already holds a name the migration needs: CREATE TABLE tasks succeeds,
    # then CREATE INDEX fails. The table must not remain without its indexes or revision.
    engine = create_engine(parse_database_url(empty_database_url))
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE squatter (created_at INTEGER)")
            await conn.exec_driver_sql(
                "CREATE INDEX ix_tasks_created_at_id ON squatter (created_at)"
            )
    finally:
        await engine.dispose()

    with pytest.raises(Exception, match="ix_tasks_created_at_id"):
        await migrate(empty_database_url)

    assert await table_names(empty_database_url) == {"squatter"}


async def _upgrade_to(url: str, revision: str) -> None:
    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as conn:
            await conn.run_sync(upgrade)
            await conn.commit()
    finally:
        await engine.dispose()


async def test_rows_written_before_the_source_column_read_back_as_task(
    empty_database_url: str,
) -> None:
    # A history from revision 0001, when POST /task was the only recorded entry point.
    await _upgrade_to(empty_database_url, "0001")
    engine = create_engine(parse_database_url(empty_database_url))
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO tasks (id, key_id, created_at, status, prompt, strategy, params, "
                "prompt_tokens, completion_tokens, calls, latency_ms, budget_exhausted) VALUES "
                "('old-task', 'key-a', '2025-01-01 00:00:00', 'succeeded', 'hi', 'direct', "
                "'{}', 1, 1, 1, 1.0, false)"
            )
    finally:
        await engine.dispose()

    store = await open_store(empty_database_url)  # migrates 0001 -> head
    try:
        record = await store.get("old-task", key_id=None)
    finally:
        await store.aclose()

    assert await revision_of(empty_database_url) == head_revision()
    assert record is not None and record.source == "task"
