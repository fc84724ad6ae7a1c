"""SQLite specifics: durability pragmas on every connection, listings that use the indexes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Select, literal, select, tuple_

from api.persistence import SqlTaskStore, open_store
from api.persistence.models import tasks


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlTaskStore]:
    store = await open_store(f"sqlite:///{tmp_path}/tasks.db")
    yield store
    await store.aclose()


async def pragma(store: SqlTaskStore, name: str) -> object:
    async with store.engine.connect() as conn:
        return (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()


async def test_the_database_file_is_in_wal_mode(sqlite_store: SqlTaskStore) -> None:
    assert await pragma(sqlite_store, "journal_mode") == "wal"


async def test_connections_sync_fully_by_default(sqlite_store: SqlTaskStore) -> None:
    assert await pragma(sqlite_store, "synchronous") == 2  # FULL


async def test_synchronous_normal_from_the_url_reaches_the_connection(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/tasks.db?synchronous=normal")
    try:
        assert await pragma(store, "synchronous") == 1  # NORMAL
    finally:
        await store.aclose()


async def test_connections_wait_for_a_busy_database(sqlite_store: SqlTaskStore) -> None:
    assert await pragma(sqlite_store, "busy_timeout") == 5000


async def test_the_data_directory_is_created(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/new/dir/tasks.db")
    await store.aclose()

    assert (tmp_path / "new" / "dir" / "tasks.db").is_file()


async def query_plan(store: SqlTaskStore, stmt: Select[tuple[object, ...]]) -> str:
    sql = str(stmt.compile(store.engine.sync_engine, compile_kwargs={"literal_binds": True}))
    async with store.engine.connect() as conn:
        rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
    return " | ".join(str(row[-1]) for row in rows)


def listing(key_id: str | None) -> Select[tuple[object, ...]]:
    # The shape SqlTaskStore.query emits for a page after a cursor.
    stmt = select(tasks)
    if key_id is not None:
        stmt = stmt.where(tasks.c.key_id == key_id)
    return (
        stmt.where(
            tuple_(tasks.c.created_at, tasks.c.id) < tuple_(literal("2030-01-01"), literal("z"))
        )
        .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
        .limit(51)
    )


async def test_per_key_listing_walks_the_key_index_without_sorting(
    sqlite_store: SqlTaskStore,
) -> None:
    plan = await query_plan(sqlite_store, listing("key-a"))

    assert "USING INDEX ix_tasks_key_id_created_at_id" in plan
    assert "TEMP B-TREE" not in plan


async def test_admin_listing_walks_the_created_at_index_without_sorting(
    sqlite_store: SqlTaskStore,
) -> None:
    plan = await query_plan(sqlite_store, listing(None))

    assert "USING INDEX ix_tasks_created_at_id" in plan
    assert "TEMP B-TREE" not in plan
