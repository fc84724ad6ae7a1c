"""`SqlTaskStore`: the SQLAlchemy implementation of the `TaskStore` (and `JobStore`) contract.

Writes go through a group-commit writer: `add()` queues the row and waits for the transaction
that contains it to commit. A writer task takes everything queued so far (up to `max_batch` rows)
and inserts it in one transaction, so N concurrent requests cost one commit (one WAL fsync on
SQLite) instead of N commits queued behind each other. SQLite allows one writer at a time, so it
gets one writer task; PostgreSQL gets several, since it commits concurrent transactions in
parallel. This is hand-written because neither SQLAlchemy nor aiosqlite offers group commit; it is
small and measured in `bench/service_bench.py`. On a SQLite file each batch is one call into a
dedicated writer thread running a synchronous engine, which halves the CPU of a write compared
with going through aiosqlite statement by statement.

`add()` returns only after COMMIT has returned, so an acknowledged record is durable (see
`engine.py` for what SQLite's synchronous modes promise). A request cancelled while waiting does
not cancel the write.

Any text is storable: what a backend cannot hold (U+0000 on PostgreSQL, in text and jsonb alike;
lone surrogates on both backends) is replaced by U+FFFD on the way in, in the rows written and in
the values looked up alike. Otherwise one prompt holding a NUL (any client can send one) would
fail its whole group-commit batch, the other clients' tasks included, with a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import orjson
from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.persistence.cursor import decode_cursor, encode_cursor
from api.persistence.engine import DatabaseTarget
from api.persistence.models import tasks
from api.persistence.records import (
    ACTIVE_STATUSES,
    Claim,
    Page,
    QueryFilters,
    RenewResult,
    TaskRecord,
)

logger = logging.getLogger(__name__)

_SENTINEL: Final = object()
# What a database outage looks like from here: driver errors SQLAlchemy wraps, plus the socket
# errors asyncpg raises before a connection exists.
_DB_ERRORS: Final = (DBAPIError, OSError, TimeoutError)
_FIELDS: Final = tuple(f.name for f in fields(TaskRecord))


class StoreError(RuntimeError):
    """The database failed; the message is safe to show (no SQL, no parameters, no URL)."""


class DuplicateTaskError(StoreError):
    """A record with this id already exists."""


def _safe_error(exc: BaseException) -> StoreError:
    if isinstance(exc, IntegrityError):
        return DuplicateTaskError("a task with this id is already recorded")
    if isinstance(exc, DBAPIError):
        # str(exc) would carry the SQL and its parameters (the prompt); the class name is enough.
        return StoreError(f"database error ({type(exc.orig).__name__})")
    return StoreError(f"database error ({type(exc).__name__})")


def _row_to_record(row: Row[Any]) -> TaskRecord:
    m = row._mapping
    return TaskRecord(
        id=m["id"],
        key_id=m["key_id"],
        created_at=m["created_at"],
        status=m["status"],
        prompt=m["prompt"],
        system=m["system"],
        provider=m["provider"],
        model=m["model"],
        strategy=m["strategy"],
        params=m["params"],
        answer=m["answer"],
        confidence=m["confidence"],
        votes=m["votes"],
        prompt_tokens=m["prompt_tokens"],
        completion_tokens=m["completion_tokens"],
        calls=m["calls"],
        latency_ms=m["latency_ms"],
        error_code=m["error_code"],
        error_message=m["error_message"],
        trace=m["trace"],
        budget_exhausted=m["budget_exhausted"],
        source=m["source"],
        attempts=m["attempts"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        enqueued_at=m["enqueued_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        cancel_requested=m["cancel_requested"],
        progress=m["progress"],
        job_options=m["job_options"],
        callback=m["callback"],
        sampling=m["sampling"],
        providers_used=m["providers_used"],
    )


# What `finish` writes over a background task's row: the outcome, as the pipeline built it.
_OUTCOME_FIELDS: Final = (
    "status",
    "provider",
    "model",
    "answer",
    "confidence",
    "votes",
    "prompt_tokens",
    "completion_tokens",
    "calls",
    "latency_ms",
    "error_code",
    "error_message",
    "trace",
    "budget_exhausted",
    "progress",
)


def _now() -> datetime:
    return datetime.now(UTC)


_NUL: Final = "\x00"
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_REPLACEMENT: Final = "\ufffd"


_INSERT_TASK: Final = insert(tasks)


def _storable_text(text: str, *, nul: bool) -> str:
    if text.isascii():  # the common case, and a fast check
        return text.replace(_NUL, _REPLACEMENT) if nul and _NUL in text else text
    text = _SURROGATE.sub(_REPLACEMENT, text)  # not encodable as UTF-8 by any driver
    return text.replace(_NUL, _REPLACEMENT) if nul else text


def _storable(value: Any, *, nul: bool) -> Any:
    """`value` with every string (JSON keys included) made storable; `nul`: U+0000 too."""
    if isinstance(value, str):
        return _storable_text(value, nul=nul)
    if isinstance(value, dict):
        return {
            (_storable_text(k, nul=nul) if isinstance(k, str) else k): _storable(v, nul=nul)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_storable(item, nul=nul) for item in value]
    return value


def _storable_row(values: dict[str, Any], *, nul: bool) -> dict[str, Any]:
    """`values` made storable, checked in one pass in C first: orjson refuses a surrogate, and
    writes U+0000 as the escape `\\u0000`, so a row it encodes without either is stored as it is.
    The check is a serialisation; walking the row in Python cost ~50 calls per task record.
    (A false alarm, say a prompt with a literal backslash-u0000, only takes the slow path.)"""
    try:
        encoded = orjson.dumps(values, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # a surrogate, or a value JSON has no form for: check it the slow way
        pass
    else:
        if not nul or b"\\u0000" not in encoded:
            return values
    return {name: _storable(value, nul=nul) for name, value in values.items()}


def _as_utc(value: datetime) -> datetime:
    # A filter without an offset is read as UTC, the zone every record is stored in.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Pending:
    __slots__ = ("future", "row")

    def __init__(self, row: dict[str, Any], future: asyncio.Future[None]) -> None:
        self.row = row
        self.future = future


class SqlTaskStore:
    """TaskStore on SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

    def __init__(
        self,
        engine: AsyncEngine,
        target: DatabaseTarget,
        *,
        sync_writer: Engine | None = None,
        writers: int | None = None,
        max_batch: int = 256,
    ) -> None:
        self._engine = engine
        self._target = target
        # File SQLite: batches are written by a synchronous engine in one dedicated thread
        # (see engine.create_sqlite_writer_engine); otherwise through the async engine.
        self._sync_writer = sync_writer
        self._writer_connection: Connection | None = None  # used only in the writer thread
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="task-store-writer")
            if sync_writer is not None
            else None
        )
        self._writers = writers or (1 if target.backend == "sqlite" else 4)
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending | object] | None = None
        self._writer_tasks: list[asyncio.Task[None]] = []
        self._closed = False
        # One shared in-memory SQLite connection cannot interleave transactions: serialise.
        self._serial = asyncio.Lock() if target.in_memory else None

    @property
    def backend(self) -> str:
        return self._target.backend

    def _storable(self, value: Any) -> Any:
        # PostgreSQL's text and jsonb refuse U+0000; SQLite keeps it.
        return _storable(value, nul=self._target.backend == "postgresql")

    def _storable_row(self, values: dict[str, Any]) -> dict[str, Any]:
        return _storable_row(values, nul=self._target.backend == "postgresql")

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # -- writing -------------------------------------------------------------------------------

    async def add(self, record: TaskRecord) -> None:
        if self._closed:
            raise StoreError("the task store is closed")
        queue = self._ensure_writers()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Shallow: the record is frozen and only read (dataclasses.asdict would deep-copy the
        # params and the trace, measurable CPU per request).
        row = self._storable_row({name: getattr(record, name) for name in _FIELDS})
        queue.put_nowait(_Pending(row, future))
        # A caller cancelled here (client gone) cancels only its wait: the row is queued and
        # the writer still commits it, so what the service decided to record is recorded.
        await future

    def _ensure_writers(self) -> asyncio.Queue[_Pending | object]:
        # Created lazily so the queue and tasks belong to the loop that uses the store.
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._writer_tasks = [
                asyncio.create_task(self._writer_loop(self._queue), name=f"task-store-writer-{i}")
                for i in range(self._writers)
            ]
        return self._queue

    async def _writer_loop(self, queue: asyncio.Queue[_Pending | object]) -> None:
        while True:
            first = await queue.get()
            if first is _SENTINEL:
                queue.task_done()
                return
            batch: list[_Pending] = [first]  # type: ignore[list-item]
            stop = False
            while len(batch) < self._max_batch and not queue.empty():
                item = queue.get_nowait()
                if item is _SENTINEL:
                    stop = True
                    queue.task_done()
                    break
                batch.append(item)  # type: ignore[arg-type]
            try:
                await self._write_batch(batch)
            finally:
                for _ in batch:
                    queue.task_done()
            if stop:
                return

    async def _write_batch(self, batch: list[_Pending]) -> None:
        try:
            await self._insert([p.row for p in batch])
        except Exception as exc:
            if len(batch) == 1 or not isinstance(exc, IntegrityError):
                # The database is down or refusing: every row shares the fate (and no retry
                # storm of one connection attempt per row).
                for pending in batch:
                    self._settle(pending, exc)
                return
            # One bad row (say a duplicate id) must not fail its neighbours: retry one by one.
            for pending in batch:
                try:
                    await self._insert([pending.row])
                except Exception as single_exc:
                    self._settle(pending, single_exc)
                else:
                    self._settle(pending, None)
        else:
            for pending in batch:
                self._settle(pending, None)

    @staticmethod
    def _settle(pending: _Pending, exc: BaseException | None) -> None:
        if pending.future.done():
            return
        if exc is None:
            pending.future.set_result(None)
        else:
            if not isinstance(exc, IntegrityError):
                logger.error("task store write failed: %s", _safe_error(exc))
            pending.future.set_exception(_safe_error(exc))

    async def _insert(self, rows: Sequence[dict[str, Any]]) -> None:
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._insert_in_thread, rows)
            return
        async with self._connection(write=True) as conn:
            await conn.execute(insert(tasks), list(rows))

    def _insert_in_thread(self, rows: Sequence[dict[str, Any]]) -> None:
        # The writer thread keeps its connection between batches: a checkout from the pool and
        # its reset on return cost ~40 us per transaction, a tenth of a lone task's CPU. After
        # any failure the connection is dropped, and the next batch opens a fresh one.
        if self._writer_connection is None:
            assert self._sync_writer is not None
            self._writer_connection = self._sync_writer.connect()
        conn = self._writer_connection
        try:
            with conn.begin():  # one transaction, COMMIT before returning
                conn.execute(_INSERT_TASK, list(rows))
        except BaseException:
            self._close_writer_connection()
            raise

    def _close_writer_connection(self) -> None:
        conn, self._writer_connection = self._writer_connection, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _dispose_writer(self) -> None:
        self._close_writer_connection()
        assert self._sync_writer is not None
        self._sync_writer.dispose()

    # -- reading -------------------------------------------------------------------------------

    async def get(self, task_id: str, *, key_id: str | None) -> TaskRecord | None:
        stmt = select(tasks).where(tasks.c.id == self._storable(task_id))
        if key_id is not None:
            stmt = stmt.where(tasks.c.key_id == key_id)
        try:
            async with self._connection() as conn:
                row = (await conn.execute(stmt)).first()
        except _DB_ERRORS as exc:
            raise _safe_error(exc) from None
        return None if row is None else _row_to_record(row)

    async def query(
        self, filters: QueryFilters, *, key_id: str | None, limit: int, cursor: str | None
    ) -> Page:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        conditions: list[ColumnElement[bool]] = []
        if key_id is not None:
            conditions.append(tasks.c.key_id == key_id)
        for column, value in (
            (tasks.c.model, filters.model),
            (tasks.c.strategy, filters.strategy),
            (tasks.c.status, filters.status),
            (tasks.c.source, filters.source),
        ):
            if value is not None:
                conditions.append(column == self._storable(value))
        if filters.provider is not None:
            # The provider that served, or any that answered a call (a vote across providers).
            name = self._storable(filters.provider)
            conditions.append(
                or_(
                    tasks.c.provider == name,
                    tasks.c.providers_used.contains(f",{name},", autoescape=True),
                )
            )
        if filters.since is not None:
            conditions.append(tasks.c.created_at >= _as_utc(filters.since))
        if filters.until is not None:
            conditions.append(tasks.c.created_at < _as_utc(filters.until))
        if filters.q:
            # Case-insensitive substring match; autoescape makes % and _ in the text literal.
            # A sequential filter over the rows the index walk yields: fine at our sizes, a
            # trigram index on PostgreSQL is the next step (see docs).
            text = self._storable(filters.q)
            conditions.append(
                or_(
                    tasks.c.prompt.icontains(text, autoescape=True),
                    tasks.c.answer.icontains(text, autoescape=True),
                )
            )
        if cursor is not None:
            after_created, after_id = decode_cursor(cursor)
            after_id = self._storable(after_id)
            # Row-value comparison: both backends turn it into an index range on (created_at, id).
            conditions.append(
                tuple_(tasks.c.created_at, tasks.c.id)
                < tuple_(literal(after_created, tasks.c.created_at.type), literal(after_id))
            )

        stmt = (
            select(tasks)
            .where(*conditions)
            .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
            .limit(limit + 1)
        )
        try:
            async with self._connection() as conn:
                rows = (await conn.execute(stmt)).all()
        except _DB_ERRORS as exc:
            raise _safe_error(exc) from None
        items = [_row_to_record(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = encode_cursor(last.created_at, last.id)
        return Page(items=items, next_cursor=next_cursor)

    # -- background tasks ------------------------------------------------------------------------
    # Every change is one guarded UPDATE (by status and, for a running task, by lease owner), so
    # two workers can never both hold a task and a stale worker can never overwrite a row.

    async def _update(self, stmt: Any) -> int:
        try:
            async with self._connection(write=True) as conn:
                result = await conn.execute(stmt)
        except _DB_ERRORS as exc:
            raise _safe_error(exc) from None
        return int(result.rowcount or 0)

    async def count_active(self, key_id: str) -> int:
        stmt = (
            select(func.count())
            .select_from(tasks)
            .where(tasks.c.key_id == key_id, tasks.c.status.in_(ACTIVE_STATUSES))
        )
        try:
            async with self._connection() as conn:
                return int((await conn.execute(stmt)).scalar_one())
        except _DB_ERRORS as exc:
            raise _safe_error(exc) from None

    async def count_by_status(self) -> dict[str, int]:
        stmt = (
            select(tasks.c.status, func.count())
            .where(tasks.c.status.in_(ACTIVE_STATUSES))
            .group_by(tasks.c.status)
        )
        try:
            async with self._connection() as conn:
                rows = (await conn.execute(stmt)).all()
        except _DB_ERRORS as exc:
            raise _safe_error(exc) from None
        counts: dict[str, int] = dict.fromkeys(ACTIVE_STATUSES, 0)
        counts.update({str(row[0]): int(row[1]) for row in rows})
        return counts

    async def claim(self, task_id: str, owner: str, lease_seconds: float) -> Claim | None:
        now = _now()
        claimable = or_(
            tasks.c.status == "queued",
            and_(tasks.c.status == "running", tasks.c.lease_expires_at < now),
        )
        stmt = (
            update(tasks)
            .where(tasks.c.id == task_id, claimable)
            .values(
                status="running",
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=now,
                attempts=tasks.c.attempts + 1,
            )
        )
        try:
            async with self._connection(write=True) as conn:
                if (await conn.execute(stmt)).rowcount != 1:
                    return None
                row = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).one()
        except _DB_ERRORS as exc:
            raise _safe_error(exc) from None
        return Claim(record=_row_to_record(row), owner=owner)

    async def renew(
        self, task_id: str, owner: str, lease_seconds: float, progress: dict[str, Any] | None
    ) -> RenewResult:
        values: dict[str, Any] = {"lease_expires_at": _now() + timedelta(seconds=lease_seconds)}
        if progress is not None:
            values["progress"] = self._storable(progress)
        stmt = (
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.status == "running", tasks.c.lease_owner == owner)
            .values(**values)
        )
        try:
            async with self._connection(write=True) as conn:
                if (await conn.execute(stmt)).rowcount != 1:
                    return "lost"
                flag = (
                    await conn.execute(
                        select(tasks.c.cancel_requested).where(tasks.c.id == task_id)
                    )
                ).scalar_one()
        except _DB_ERRORS as exc:
            raise _safe_error(exc) from None
        return "cancel" if flag else "ok"

    async def finish(self, record: TaskRecord, owner: str) -> bool:
        values = self._storable_row({name: getattr(record, name) for name in _OUTCOME_FIELDS})
        values.update(lease_owner=None, lease_expires_at=None, finished_at=_now())
        stmt = (
            update(tasks)
            .where(
                tasks.c.id == record.id, tasks.c.status == "running", tasks.c.lease_owner == owner
            )
            .values(**values)
        )
        return await self._update(stmt) == 1

    async def release(self, task_id: str, owner: str, *, enqueue_after: float) -> bool:
        # enqueued_at in the future: the sweeper leaves it alone until then.
        stmt = (
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.status == "running", tasks.c.lease_owner == owner)
            .values(
                status="queued",
                lease_owner=None,
                lease_expires_at=None,
                enqueued_at=_now() + timedelta(seconds=enqueue_after),
            )
        )
        return await self._update(stmt) == 1

    async def request_cancel(self, task_id: str, key_id: str | None) -> str | None:
        mine = [tasks.c.id == self._storable(task_id)]
        if key_id is not None:
            mine.append(tasks.c.key_id == key_id)
        never_ran = (
            update(tasks)
            .where(*mine, tasks.c.status == "queued")
            .values(
                status="cancelled",
                error_code="cancelled",
                error_message="cancelled before it ran",
                finished_at=_now(),
                cancel_requested=True,
            )
        )
        if await self._update(never_ran) == 1:
            return "cancelled"
        running = (
            update(tasks).where(*mine, tasks.c.status == "running").values(cancel_requested=True)
        )
        if await self._update(running) == 1:
            return "requested"
        return None

    async def mark_enqueued(
        self,
        task_id: str,
        *,
        stale_before: datetime | None,
        at: datetime | Literal["now"] | None = "now",
    ) -> bool:
        conditions: list[ColumnElement[bool]] = [tasks.c.id == task_id]
        if stale_before is not None:
            conditions.append(self._due(stale_before))
        when = _now() if at == "now" else at
        stmt = update(tasks).where(*conditions).values(enqueued_at=when)
        return await self._update(stmt) == 1

    @staticmethod
    def _due(stale_before: datetime, *, queued_stale: bool = True) -> ColumnElement[bool]:
        never = tasks.c.enqueued_at.is_(None)
        not_since = or_(never, tasks.c.enqueued_at < stale_before)
        return or_(
            and_(tasks.c.status == "queued", not_since if queued_stale else never),
            and_(
                tasks.c.status == "running",
                tasks.c.lease_expires_at < _now(),
                not_since,
            ),
        )

    async def due_for_requeue(
        self, stale_before: datetime, limit: int, *, queued_stale: bool = True
    ) -> list[str]:
        stmt = (
            select(tasks.c.id)
            .where(
                tasks.c.status.in_(ACTIVE_STATUSES),
                self._due(stale_before, queued_stale=queued_stale),
            )
            .order_by(tasks.c.created_at)
            .limit(limit)
        )
        try:
            async with self._connection() as conn:
                return [str(row[0]) for row in (await conn.execute(stmt)).all()]
        except _DB_ERRORS as exc:
            raise _safe_error(exc) from None

    async def record_callback(self, task_id: str, outcome: dict[str, Any]) -> None:
        await self._update(
            update(tasks).where(tasks.c.id == task_id).values(callback=self._storable(outcome))
        )

    async def ping(self) -> None:
        try:
            async with self._connection() as conn:
                await conn.execute(select(literal(1)))
        except _DB_ERRORS as exc:
            raise _safe_error(exc) from None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._queue is not None:
            # Let queued writes finish: every caller still waiting gets its answer.
            for _ in self._writer_tasks:
                self._queue.put_nowait(_SENTINEL)
            await asyncio.gather(*self._writer_tasks, return_exceptions=True)
        if self._executor is not None and self._sync_writer is not None:
            # The writer's connection was made in its thread: close it there too.
            await asyncio.get_running_loop().run_in_executor(self._executor, self._dispose_writer)
            self._executor.shutdown(wait=False)
        await self._engine.dispose()

    # -- helpers -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connection(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        serial = self._serial or contextlib.nullcontext()
        async with serial:
            if write:
                async with self._engine.begin() as conn:
                    yield conn
            else:
                async with self._engine.connect() as conn:
                    yield conn
