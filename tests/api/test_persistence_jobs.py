"""The history store's background-task operations, on SQLite and PostgreSQL: one claimer wins,
every write is guarded by status and lease owner, the sweeper's selection, migration 0003."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete
from sqlalchemy.engine import Connection

from api.persistence import SqlTaskStore, open_store
from api.persistence.engine import create_engine, parse_database_url
from api.persistence.models import tasks
from api.persistence.schema import alembic_config
from tests.api.test_persistence_migrations import _upgrade_to, empty_database_url, revision_of
from tests.api.test_persistence_store import database_url, make_record

__all__ = ["database_url", "empty_database_url"]  # fixtures used here


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlTaskStore]:
    opened = await open_store(database_url)
    async with opened.engine.begin() as conn:
        await conn.execute(delete(tasks))
    yield opened
    await opened.aclose()


def queued(**overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "status": "queued",
        "answer": None,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "calls": 0,
        "latency_ms": 0.0,
        "source": "job",
        "enqueued_at": datetime.now(UTC),
        "job_options": {"trace": False, "callback_url": None},
    }
    fields.update(overrides)
    return make_record(**fields)


async def test_of_many_concurrent_claimers_exactly_one_wins(store: SqlTaskStore) -> None:
    record = queued()
    await store.add(record)
    claims = await asyncio.gather(*(store.claim(record.id, f"w{i}", 30) for i in range(8)))
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    held = winners[0].record
    assert held.status == "running" and held.attempts == 1 and held.lease_owner == winners[0].owner
    assert await store.claim(record.id, "late", 30) is None  # a live lease holds


async def test_only_the_lease_owner_renews_and_finishes_and_only_once(store: SqlTaskStore) -> None:
    record = queued()
    await store.add(record)
    claim = await store.claim(record.id, "owner", 30)
    assert claim is not None
    assert await store.renew(record.id, "intruder", 30, {"calls_done": 9}) == "lost"
    assert await store.renew(record.id, "owner", 30, {"calls_done": 1}) == "ok"
    ended = replace(claim.record, status="succeeded", answer="4", calls=1, progress={"x": 1})
    assert not await store.finish(ended, "intruder")
    assert await store.finish(ended, "owner")
    assert not await store.finish(ended, "owner")  # idempotent: the second write changes nothing
    stored = await store.get(record.id, key_id=None)
    assert stored is not None and stored.status == "succeeded" and stored.lease_owner is None
    assert stored.finished_at is not None and stored.progress == {"x": 1}


async def test_an_expired_lease_is_taken_over_and_the_old_owner_is_locked_out(
    store: SqlTaskStore,
) -> None:
    record = queued()
    await store.add(record)
    first = await store.claim(record.id, "dead", 0.05)
    assert first is not None
    await asyncio.sleep(0.1)
    stale = datetime.now(UTC) + timedelta(seconds=1)
    assert await store.due_for_requeue(stale, 10) == [record.id]
    second = await store.claim(record.id, "alive", 30)
    assert second is not None and second.record.attempts == 2
    assert await store.renew(record.id, "dead", 30, None) == "lost"
    assert not await store.finish(replace(first.record, status="failed"), "dead")
    assert await store.count_active("key-a") == 1


async def test_cancel_of_a_queued_task_stops_any_claim_and_of_a_running_one_sets_the_flag(
    store: SqlTaskStore,
) -> None:
    waiting, running = queued(), queued()
    await store.add(waiting)
    await store.add(running)
    assert await store.claim(running.id, "w", 30) is not None
    assert await store.request_cancel(waiting.id, "key-b") is None  # another key's
    assert await store.request_cancel(waiting.id, "key-a") == "cancelled"
    assert await store.claim(waiting.id, "w", 30) is None
    assert await store.request_cancel(running.id, "key-a") == "requested"
    assert await store.renew(running.id, "w", 30, None) == "cancel"
    assert await store.count_by_status() == {"queued": 0, "running": 1}


async def test_the_sweeper_elects_one_re_enqueuer_and_released_tasks_wait(
    store: SqlTaskStore,
) -> None:
    lost = queued(enqueued_at=None)
    fresh = queued()
    await store.add(lost)
    await store.add(fresh)
    cutoff = datetime.now(UTC) - timedelta(seconds=60)
    assert await store.due_for_requeue(cutoff, 10) == [lost.id]
    marks = await asyncio.gather(
        *(store.mark_enqueued(lost.id, stale_before=cutoff) for _ in range(5))
    )
    assert marks.count(True) == 1
    assert await store.due_for_requeue(cutoff, 10) == []
    assert await store.claim(fresh.id, "w", 30) is not None
    assert await store.release(fresh.id, "w", enqueue_after=3600)
    later = datetime.now(UTC) + timedelta(seconds=1000)
    assert await store.due_for_requeue(later, 10) == [lost.id]  # the retry is not due yet
    assert (await store.get(fresh.id, key_id=None)).status == "queued"  # type: ignore[union-attr]


async def test_rows_from_before_0003_read_back_as_plain_tasks_and_0003_downgrades(
    empty_database_url: str,
) -> None:
    await _upgrade_to(empty_database_url, "0002")
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
    opened = await open_store(empty_database_url)  # 0002 -> head
    try:
        record = await opened.get("old-task", key_id=None)
    finally:
        await opened.aclose()
    assert record is not None and record.attempts == 0 and record.cancel_requested is False
    assert record.lease_owner is None and record.progress is None

    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")

    engine = create_engine(parse_database_url(empty_database_url))
    try:
        async with engine.connect() as conn:
            await conn.run_sync(downgrade)
            await conn.commit()
    finally:
        await engine.dispose()
    assert await revision_of(empty_database_url) == "0002"
