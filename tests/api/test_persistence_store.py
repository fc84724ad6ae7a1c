"""The task store's behaviour, on SQLite (a temp file) and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete

from api.persistence import (
    DuplicateTaskError,
    QueryFilters,
    SqlTaskStore,
    StoreError,
    TaskRecord,
    open_store,
)
from api.persistence.engine import create_engine, parse_database_url
from api.persistence.models import tasks

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
_ids = itertools.count(1)


def make_record(**overrides: Any) -> TaskRecord:
    fields: dict[str, Any] = {
        "id": f"{next(_ids):032x}",
        "key_id": "key-a",
        "created_at": T0,
        "status": "succeeded",
        "prompt": "What is 2 + 2?",
        "system": None,
        "provider": "echo",
        "model": "echo-1",
        "strategy": "direct",
        "params": {},
        "answer": "4",
        "confidence": None,
        "votes": None,
        "prompt_tokens": 5,
        "completion_tokens": 1,
        "calls": 1,
        "latency_ms": 3.25,
        "error_code": None,
        "error_message": None,
        "trace": None,
        "budget_exhausted": False,
    }
    fields.update(overrides)
    return TaskRecord(**fields)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/data/tasks.db"
    url: str = request.getfixturevalue("pg_database_url")
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlTaskStore]:
    opened = await open_store(database_url)
    # The PostgreSQL database lives for the session: start every test from an empty table.
    async with opened.engine.begin() as conn:
        await conn.execute(delete(tasks))
    yield opened
    await opened.aclose()


async def all_pages(
    store: SqlTaskStore, filters: QueryFilters, *, key_id: str | None, limit: int
) -> list[list[TaskRecord]]:
    pages: list[list[TaskRecord]] = []
    cursor: str | None = None
    while True:
        page = await store.query(filters, key_id=key_id, limit=limit, cursor=cursor)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_added_record_reads_back_field_for_field(store: SqlTaskStore) -> None:
    record = make_record(
        system="Be brief.",
        strategy="self_consistency",
        params={"samples": 5, "temperature": 0.7, "budget": {"max_calls": 9}},
        answer="4",
        confidence=0.8,
        votes={"4": 4, "5": 1},
        prompt_tokens=50,
        completion_tokens=10,
        calls=5,
        trace=[{"kind": "sample", "index": 0, "text": "4"}, {"kind": "vote", "winner": "4"}],
        budget_exhausted=True,
        source="v1",
    )
    await store.add(record)

    assert await store.get(record.id, key_id="key-a") == record


async def test_failed_record_keeps_its_error_code(store: SqlTaskStore) -> None:
    record = make_record(
        status="failed",
        answer=None,
        error_code="timeout",
        error_message="the upstream did not answer in 30s",
        completion_tokens=0,
    )
    await store.add(record)

    assert await store.get(record.id, key_id="key-a") == record


async def test_created_at_in_another_zone_comes_back_as_the_same_instant_in_utc(
    store: SqlTaskStore,
) -> None:
    paris = timezone(timedelta(hours=2))
    record = make_record(created_at=datetime(2025, 6, 1, 14, 0, tzinfo=paris))
    await store.add(record)

    got = await store.get(record.id, key_id="key-a")

    assert got is not None
    assert got.created_at == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert got.created_at.tzinfo == UTC


async def test_get_unknown_id_returns_none(store: SqlTaskStore) -> None:
    assert await store.get("0" * 32, key_id=None) is None


async def test_get_with_another_key_returns_none(store: SqlTaskStore) -> None:
    record = make_record(key_id="key-a")
    await store.add(record)

    assert await store.get(record.id, key_id="key-b") is None


async def test_admin_get_reads_any_key(store: SqlTaskStore) -> None:
    record = make_record(key_id="key-a")
    await store.add(record)

    assert await store.get(record.id, key_id=None) == record


async def test_query_shows_only_the_callers_own_tasks(store: SqlTaskStore) -> None:
    mine = [make_record(key_id="key-a", created_at=T0 + timedelta(seconds=i)) for i in range(3)]
    theirs = [make_record(key_id="key-b", created_at=T0 + timedelta(seconds=i)) for i in range(3)]
    for record in mine + theirs:
        await store.add(record)

    page = await store.query(QueryFilters(), key_id="key-a", limit=50, cursor=None)

    assert {r.id for r in page.items} == {r.id for r in mine}


async def test_admin_query_sees_every_key(store: SqlTaskStore) -> None:
    records = [make_record(key_id=f"key-{i}") for i in range(4)]
    for record in records:
        await store.add(record)

    page = await store.query(QueryFilters(), key_id=None, limit=50, cursor=None)

    assert {r.id for r in page.items} == {r.id for r in records}


async def test_query_lists_newest_first(store: SqlTaskStore) -> None:
    records = [make_record(created_at=T0 + timedelta(minutes=i)) for i in (3, 1, 2)]
    for record in records:
        await store.add(record)

    page = await store.query(QueryFilters(), key_id="key-a", limit=50, cursor=None)

    assert [r.created_at for r in page.items] == [
        T0 + timedelta(minutes=3),
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=1),
    ]


async def test_pages_cover_every_record_once_even_with_equal_timestamps(
    store: SqlTaskStore,
) -> None:
    # 5 timestamps x 5 records each: page boundaries fall inside groups of equal created_at.
    records = [make_record(created_at=T0 + timedelta(seconds=i // 5)) for i in range(25)]
    await asyncio.gather(*(store.add(r) for r in records))

    pages = await all_pages(store, QueryFilters(), key_id="key-a", limit=4)

    listed = [r for page in pages for r in page]
    assert [len(p) for p in pages] == [4, 4, 4, 4, 4, 4, 1]
    assert listed == sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)


async def test_last_page_has_no_cursor(store: SqlTaskStore) -> None:
    for _ in range(3):
        await store.add(make_record())

    page = await store.query(QueryFilters(), key_id="key-a", limit=3, cursor=None)

    assert len(page.items) == 3
    assert page.next_cursor is None


async def test_cursor_keeps_filters_applied_on_later_pages(store: SqlTaskStore) -> None:
    for i in range(10):
        await store.add(
            make_record(created_at=T0 + timedelta(seconds=i), status=("failed", "succeeded")[i % 2])
        )

    pages = await all_pages(store, QueryFilters(status="failed"), key_id="key-a", limit=2)

    listed = [r for page in pages for r in page]
    assert len(listed) == 5
    assert {r.status for r in listed} == {"failed"}


async def test_new_tasks_do_not_shift_a_listing_in_progress(store: SqlTaskStore) -> None:
    old = [make_record(created_at=T0 + timedelta(seconds=i)) for i in range(4)]
    for record in old:
        await store.add(record)
    first = await store.query(QueryFilters(), key_id="key-a", limit=2, cursor=None)

    await store.add(make_record(created_at=T0 + timedelta(hours=1)))
    second = await store.query(QueryFilters(), key_id="key-a", limit=2, cursor=first.next_cursor)

    assert [r.id for r in first.items + second.items] == [r.id for r in reversed(old)]


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"t": "2025-01-01T00:00:00+00:00"}').decode(),
        base64.urlsafe_b64encode(b'{"t": "yesterday", "i": "x"}').decode(),
        base64.urlsafe_b64encode(b'["t", "i"]').decode(),
        "",
    ],
)
async def test_a_cursor_we_did_not_issue_is_a_clean_value_error(
    store: SqlTaskStore, cursor: str
) -> None:
    with pytest.raises(ValueError, match=r"^invalid cursor$"):
        await store.query(QueryFilters(), key_id="key-a", limit=10, cursor=cursor)


async def test_limit_below_one_is_rejected(store: SqlTaskStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.query(QueryFilters(), key_id="key-a", limit=0, cursor=None)


@pytest.mark.parametrize(
    ("field", "wanted", "other"),
    [
        ("provider", "openai", "echo"),
        ("model", "gpt-4o-mini", "echo-1"),
        ("strategy", "debate", "direct"),
        ("status", "failed", "succeeded"),
        ("source", "v1", "task"),
    ],
)
async def test_filter_on_a_field_keeps_only_matching_tasks(
    store: SqlTaskStore, field: str, wanted: str, other: str
) -> None:
    match = make_record(**{field: wanted})
    await store.add(match)
    await store.add(make_record(**{field: other}))

    only: dict[str, Any] = {field: wanted}
    page = await store.query(QueryFilters(**only), key_id="key-a", limit=50, cursor=None)

    assert [r.id for r in page.items] == [match.id]


async def test_q_searches_prompt_and_answer_case_insensitively(store: SqlTaskStore) -> None:
    in_prompt = make_record(prompt="Tell me about Paris", answer="A city.")
    in_answer = make_record(prompt="Capital of France?", answer="PARIS")
    neither = make_record(prompt="Capital of Italy?", answer="Rome")
    for record in (in_prompt, in_answer, neither):
        await store.add(record)

    page = await store.query(QueryFilters(q="paris"), key_id="key-a", limit=50, cursor=None)

    assert {r.id for r in page.items} == {in_prompt.id, in_answer.id}


async def test_q_takes_percent_literally(store: SqlTaskStore) -> None:
    percent = make_record(prompt="Is 50% of 8 four?")
    digits = make_record(prompt="Is 500 of 8 four?")
    await store.add(percent)
    await store.add(digits)

    page = await store.query(QueryFilters(q="50%"), key_id="key-a", limit=50, cursor=None)

    assert [r.id for r in page.items] == [percent.id]


async def test_q_takes_underscore_literally(store: SqlTaskStore) -> None:
    snake = make_record(prompt="rename max_tokens")
    other = make_record(prompt="rename maxXtokens")
    await store.add(snake)
    await store.add(other)

    page = await store.query(QueryFilters(q="max_tokens"), key_id="key-a", limit=50, cursor=None)

    assert [r.id for r in page.items] == [snake.id]


async def test_q_takes_the_escape_character_literally(store: SqlTaskStore) -> None:
    slashed = make_record(prompt="path a/b%c")
    await store.add(slashed)
    await store.add(make_record(prompt="path ab%c"))

    page = await store.query(QueryFilters(q="a/b%"), key_id="key-a", limit=50, cursor=None)

    assert [r.id for r in page.items] == [slashed.id]


async def test_since_is_inclusive_and_until_is_exclusive(store: SqlTaskStore) -> None:
    at = {i: make_record(created_at=T0 + timedelta(minutes=i)) for i in range(5)}
    for record in at.values():
        await store.add(record)

    page = await store.query(
        QueryFilters(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)),
        key_id="key-a",
        limit=50,
        cursor=None,
    )

    assert [r.id for r in page.items] == [at[2].id, at[1].id]


async def test_since_without_an_offset_is_read_as_utc(store: SqlTaskStore) -> None:
    before = make_record(created_at=T0 - timedelta(minutes=1))
    after = make_record(created_at=T0 + timedelta(minutes=1))
    await store.add(before)
    await store.add(after)

    page = await store.query(
        QueryFilters(since=T0.replace(tzinfo=None)), key_id="key-a", limit=50, cursor=None
    )

    assert [r.id for r in page.items] == [after.id]


async def test_concurrent_adds_all_commit(store: SqlTaskStore) -> None:
    records = [make_record(created_at=T0 + timedelta(microseconds=i)) for i in range(300)]

    await asyncio.gather(*(store.add(r) for r in records))

    page = await store.query(QueryFilters(), key_id="key-a", limit=1000, cursor=None)
    assert len(page.items) == 300


async def test_duplicate_id_fails_alone_without_failing_its_batch(store: SqlTaskStore) -> None:
    first = make_record()
    await store.add(first)
    neighbours = [make_record() for _ in range(20)]

    results = await asyncio.gather(
        *(store.add(r) for r in neighbours[:10]),
        store.add(replace(first, prompt="again")),
        *(store.add(r) for r in neighbours[10:]),
        return_exceptions=True,
    )

    assert isinstance(results[10], DuplicateTaskError)
    assert [r for i, r in enumerate(results) if i != 10] == [None] * 20
    page = await store.query(QueryFilters(), key_id="key-a", limit=50, cursor=None)
    assert len(page.items) == 21


async def test_a_cancelled_add_still_commits(database_url: str, store: SqlTaskStore) -> None:
    record = make_record()
    waiter = asyncio.create_task(store.add(record))
    await asyncio.sleep(0)  # queued

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await store.aclose()  # drains the queue

    reopened = await open_store(database_url)
    try:
        assert await reopened.get(record.id, key_id="key-a") == record
    finally:
        await reopened.aclose()


async def test_close_waits_for_queued_writes(database_url: str, store: SqlTaskStore) -> None:
    records = [make_record() for _ in range(50)]
    writes = [asyncio.create_task(store.add(r)) for r in records]
    await asyncio.sleep(0)

    await store.aclose()

    assert all(w.done() and w.exception() is None for w in writes)


async def test_add_after_close_raises_store_error(store: SqlTaskStore) -> None:
    await store.aclose()

    with pytest.raises(StoreError, match="closed"):
        await store.add(make_record())


async def test_records_survive_closing_and_reopening_the_store(
    database_url: str, store: SqlTaskStore
) -> None:
    records = [make_record(created_at=T0 + timedelta(seconds=i)) for i in range(5)]
    for record in records:
        await store.add(record)
    await store.aclose()

    reopened = await open_store(database_url, migrate=False)
    try:
        page = await reopened.query(QueryFilters(), key_id="key-a", limit=50, cursor=None)
    finally:
        await reopened.aclose()

    assert page.items == list(reversed(records))


async def test_ping_succeeds_on_a_reachable_database(store: SqlTaskStore) -> None:
    await store.ping()


async def test_ping_on_an_unreachable_database_raises_a_safe_store_error() -> None:
    target = parse_database_url("postgresql://ra:s3cret-pw@127.0.0.1:1/nowhere")
    unreachable = SqlTaskStore(create_engine(target), target)
    try:
        with pytest.raises(StoreError) as caught:
            await unreachable.ping()
    finally:
        await unreachable.aclose()

    assert "s3cret-pw" not in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)


async def test_an_in_memory_sqlite_store_works_for_tests() -> None:
    memory = await open_store("sqlite://")
    try:
        records = [make_record() for _ in range(20)]
        await asyncio.gather(*(memory.add(r) for r in records))
        page = await memory.query(QueryFilters(), key_id="key-a", limit=50, cursor=None)
    finally:
        await memory.aclose()

    assert {r.id for r in page.items} == {r.id for r in records}


async def test_adds_to_an_unreachable_database_all_fail_with_a_safe_store_error() -> None:
    target = parse_database_url("postgresql://ra:s3cret-pw@127.0.0.1:1/nowhere")
    unreachable = SqlTaskStore(create_engine(target), target)
    try:
        results = await asyncio.gather(
            *(unreachable.add(make_record()) for _ in range(10)), return_exceptions=True
        )
    finally:
        await unreachable.aclose()

    assert all(isinstance(r, StoreError) for r in results)
    assert not any("s3cret-pw" in str(r) for r in results)


# --- text a backend cannot hold -----------------------------------------------------------------
# PostgreSQL's text and jsonb refuse U+0000, and no driver encodes a lone surrogate as UTF-8. Any
# client can put a NUL in a prompt, so the store keeps such text with U+FFFD in its place.

UNSTORABLE = "nul \x00 and lone surrogate \ud800"


def stored_as(store: SqlTaskStore, text: str) -> str:
    text = re.sub("[\ud800-\udfff]", "\ufffd", text)
    return text if store.backend == "sqlite" else text.replace("\x00", "\ufffd")


def _text_everywhere(text: str) -> dict[str, Any]:
    """A record's text fields, each holding `text` (the JSON ones as key and value too)."""
    return {
        "prompt": text,
        "system": text,
        "model": text,
        "answer": text,
        "error_message": text,
        "params": {"stop": [text]},
        "votes": {text: 2},
        "trace": [{"text": text, text: [text]}],
    }


# Each alone too: the store checks a whole row in one pass first, and a NUL alone (PostgreSQL) or
# a surrogate alone must each be caught by that check.
@pytest.mark.parametrize(
    "unstorable",
    [UNSTORABLE, "only a nul \x00", "only a surrogate \udfff"],
    ids=["both", "nul", "surrogate"],
)
async def test_text_a_backend_cannot_hold_is_stored_with_replacement_characters(
    store: SqlTaskStore, unstorable: str
) -> None:
    record = make_record(**_text_everywhere(unstorable))
    await store.add(record)

    kept = stored_as(store, unstorable)
    assert await store.get(record.id, key_id="key-a") == replace(record, **_text_everywhere(kept))
    # ... and found again by the text the client typed.
    page = await store.query(
        QueryFilters(q=unstorable.upper(), model=unstorable), key_id="key-a", limit=5, cursor=None
    )
    assert [item.id for item in page.items] == [record.id]


async def test_a_row_with_a_nul_does_not_fail_its_batch_neighbours(store: SqlTaskStore) -> None:
    records = [make_record(prompt=f"clean {i}") for i in range(8)]
    records.insert(4, make_record(prompt="with a \x00 inside"))

    await asyncio.gather(*(store.add(r) for r in records))  # one group-commit batch

    for record in records:
        assert await store.get(record.id, key_id="key-a") is not None


async def test_lookups_by_text_a_backend_cannot_hold_find_nothing_rather_than_fail(
    store: SqlTaskStore,
) -> None:
    await store.add(make_record())
    odd = "\x00\ud800"

    assert await store.get(odd, key_id=None) is None
    filters = QueryFilters(q=odd, provider=odd, model=odd, strategy=odd)
    assert (await store.query(filters, key_id=None, limit=5, cursor=None)).items == []
