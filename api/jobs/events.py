"""A background task's event log: the events of a streamed task, replayable from the start.

With Redis, one stream per task (`XADD ... MAXLEN ~ JOB_EVENTS_MAX`, expiring
`JOB_EVENTS_RETENTION_SECONDS` after the task ends): any API instance serves
`GET /task/{id}/events` from it, whichever worker runs the task, and an event's id is its entry
id, so `Last-Event-ID` resumes exactly after it. Without Redis the log is in the API process
(where the task runs), with the same interface and the same id form (`<n>-0`).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = [
    "TERMINAL_EVENTS",
    "EventLog",
    "EventLogUnavailable",
    "LoggedEvent",
    "MemoryEventLog",
    "RedisEventLog",
    "valid_event_id",
]

TERMINAL_EVENTS: Final = frozenset({"result", "error"})
"""The last event of a task: its result, or the error (failed or cancelled) it ended with."""

_EVENT_ID: Final = re.compile(r"^\d{1,20}-\d{1,20}$")


def valid_event_id(value: str) -> bool:
    return bool(_EVENT_ID.match(value))


class EventLogUnavailable(Exception):
    """The event log (Redis) cannot be reached."""


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    id: str
    event: str
    data: dict[str, Any]


class EventLog(Protocol):
    async def append(self, task_id: str, event: str, data: dict[str, Any]) -> str:
        """Appends an event; returns its id."""

    async def read(self, task_id: str, after: str | None, *, block: float) -> list[LoggedEvent]:
        """Events after `after` (from the start when None), waiting up to `block` seconds for
        one when there is none yet."""

    async def ended(self, task_id: str) -> None:
        """The task ended: its events expire after the retention time."""

    async def aclose(self) -> None: ...


class MemoryEventLog:
    """The in-process log (no Redis): events of tasks that ran in this process."""

    def __init__(self, *, retention_seconds: float, max_events: int) -> None:
        self._events: dict[str, list[LoggedEvent]] = {}
        self._expires: dict[str, float] = {}
        self._changed = asyncio.Condition()
        self._retention = retention_seconds
        self._max = max_events

    def _purge(self) -> None:
        now = time.monotonic()
        for task_id in [t for t, at in self._expires.items() if at < now]:
            self._events.pop(task_id, None)
            self._expires.pop(task_id, None)

    async def append(self, task_id: str, event: str, data: dict[str, Any]) -> str:
        self._purge()
        log = self._events.setdefault(task_id, [])
        number = int(log[-1].id.split("-")[0]) + 1 if log else 1
        entry = LoggedEvent(f"{number}-0", event, data)
        log.append(entry)
        if len(log) > self._max:
            del log[: len(log) - self._max]
        async with self._changed:
            self._changed.notify_all()
        return entry.id

    def _after(self, task_id: str, after: str | None) -> list[LoggedEvent]:
        log = self._events.get(task_id, [])
        if after is None:
            return list(log)
        number = int(after.split("-")[0])
        return [e for e in log if int(e.id.split("-")[0]) > number]

    async def read(self, task_id: str, after: str | None, *, block: float) -> list[LoggedEvent]:
        found = self._after(task_id, after)
        if found or block <= 0:
            return found
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: bool(self._after(task_id, after))), block
                )
            except TimeoutError:
                return []
        return self._after(task_id, after)

    async def ended(self, task_id: str) -> None:
        self._expires[task_id] = time.monotonic() + self._retention

    async def aclose(self) -> None:
        return None


class RedisEventLog:
    """One Redis stream per task, under `<prefix>:jobs:events:<task id>`."""

    def __init__(self, url: str, *, prefix: str, retention_seconds: int, max_events: int) -> None:
        # socket_timeout above the longest XREAD BLOCK below, so a blocked read is not an error.
        self._redis: Redis = Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=30, health_check_interval=30
        )
        self._prefix = prefix
        self._retention = retention_seconds
        self._max = max_events

    def _key(self, task_id: str) -> str:
        return f"{self._prefix}:jobs:events:{task_id}"

    async def append(self, task_id: str, event: str, data: dict[str, Any]) -> str:
        try:
            entry_id = await self._redis.xadd(
                self._key(task_id),
                {"e": event, "d": orjson.dumps(data)},
                maxlen=self._max,
                approximate=True,
            )
        except RedisError as error:
            raise EventLogUnavailable(type(error).__name__) from None
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def read(self, task_id: str, after: str | None, *, block: float) -> list[LoggedEvent]:
        try:
            answer = await self._redis.xread(
                {self._key(task_id): after or "0-0"},
                count=500,
                block=max(1, int(min(block, 20) * 1000)) if block > 0 else None,
            )
        except RedisError as error:
            raise EventLogUnavailable(type(error).__name__) from None
        found: list[LoggedEvent] = []
        streams: list[Any] = list(answer or [])
        for _stream, entries in streams:
            for entry_id, fields in entries:
                found.append(
                    LoggedEvent(
                        entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id),
                        fields[b"e"].decode(),
                        orjson.loads(fields[b"d"]),
                    )
                )
        return found

    async def ended(self, task_id: str) -> None:
        try:
            await self._redis.expire(self._key(task_id), self._retention)
        except RedisError as error:
            raise EventLogUnavailable(type(error).__name__) from None

    async def aclose(self) -> None:
        await self._redis.aclose()
