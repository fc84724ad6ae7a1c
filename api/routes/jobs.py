"""Background tasks: `POST /task` with `"background": true`, and their status, events, cancel.

- `POST /task` + `background`: the task is committed to the history as `queued`, then put on
  the queue; 202 with its id and `Location: /task/{id}`.
- `GET /task/{id}`: the record (as `GET /query/{id}`), with `progress` while it runs.
- `GET /task/{id}/events`: Server-Sent Events from the start (or after `Last-Event-ID`), then
  live, ending with `result` or `error`.
- `POST /task/{id}/cancel`: a queued task never runs (200, cancelled); a running one is stopped
  by its worker (202, `cancel_requested`), which records it as cancelled with what it spent.

Same key isolation as /query: another key's task is a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse
from fastapi.sse import KEEPALIVE_COMMENT

from api import metrics
from api.deps import Admitted, StoreDep
from api.errors import APIError, ErrorBody
from api.ids import new_task_id
from api.jobs.callbacks import CallbackNotAllowed, check_callback_url
from api.jobs.events import TERMINAL_EVENTS, EventLogUnavailable, valid_event_id
from api.jobs.runtime import JobRuntime, QueueUnavailable, terminal_event
from api.persistence import StoreError, TaskRecord
from api.persistence.records import TERMINAL_STATUSES, JobStore
from api.routes.schemas import BackgroundAccepted, TaskRecordOut, TaskRequest
from api.security import Principal
from api.streaming import TaskEventStream, encode_event
from api.tasks import TaskSpec

__all__ = ["BACKGROUND_RESPONSES", "router", "submit_background"]

log = logging.getLogger("api.task")

router = APIRouter(tags=["tasks"])

TaskId = Annotated[str, Path(max_length=64, description="The task's id")]

_POLL_SECONDS = 5.0  # an events stream with nothing new checks the row this often


def _not_found(task_id: str) -> APIError:
    return APIError(
        404, f"no task {task_id!r} for this API key", type="not_found_error", code="task_not_found"
    )


def _storage_unavailable() -> APIError:
    return APIError(
        503,
        "the task history is unreachable; retry shortly",
        type="service_unavailable",
        code="storage_unavailable",
        headers={"Retry-After": "1"},
    )


def _runtime(request: Request) -> JobRuntime:
    runtime: JobRuntime = request.app.state.jobs
    return runtime


def _links(task_id: str) -> dict[str, str]:
    return {
        "self": f"/task/{task_id}",
        "events": f"/task/{task_id}/events",
        "cancel": f"/task/{task_id}/cancel",
    }


BACKGROUND_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": BackgroundAccepted,
        "description": "With `background`: accepted, recorded as queued and enqueued; "
        "`Location` is /task/{id}",
    },
    409: {"model": ErrorBody, "description": "Not cancellable: it has ended (not_cancellable)"},
}


async def submit_background(
    body: TaskRequest, spec: TaskSpec, principal: Principal, request: Request
) -> JSONResponse:
    """Records the task as queued, then enqueues it; 202."""
    settings = request.app.state.settings
    store: JobStore = request.app.state.store
    runtime = _runtime(request)
    if body.callback_url is not None:
        try:
            check_callback_url(
                body.callback_url,
                allowed_hosts=settings.callback_allowed_hosts,
                secret_set=settings.callback_secret is not None,
            )
        except CallbackNotAllowed as refused:
            raise APIError(
                422, refused.message, type="invalid_request_error", code="callback_not_allowed"
            ) from None
    try:
        active = await store.count_active(principal.key_id)
    except StoreError:
        raise _storage_unavailable() from None
    cap = settings.job_max_active_per_key
    if active >= cap:
        raise APIError(
            429,
            f"this API key has {active} background tasks queued or running, the most allowed "
            f"(JOB_MAX_ACTIVE_PER_KEY={cap}); wait for some to end",
            type="rate_limit_error",
            code="too_many_active_tasks",
            headers={"Retry-After": "5"},
        )
    now = datetime.now(UTC)
    record = TaskRecord(
        id=new_task_id(),
        key_id=principal.key_id,
        created_at=now,
        status="queued",
        prompt=spec.prompt,
        system=spec.system,
        provider=spec.provider,
        model=spec.model,
        strategy=spec.strategy,
        params=spec.given,
        answer=None,
        confidence=None,
        votes=None,
        prompt_tokens=0,
        completion_tokens=0,
        calls=0,
        latency_ms=0.0,
        error_code=None,
        error_message=None,
        trace=None,
        budget_exhausted=False,
        source="job",
        enqueued_at=now,
        job_options={"trace": body.trace, "callback_url": body.callback_url},
    )
    try:
        await store.add(record)  # committed (group commit) before anything else happens
    except StoreError as error:
        log.error("background task not recorded: %s", error)
        raise _storage_unavailable() from None
    accepted = BackgroundAccepted(
        id=record.id,
        created_at=now,
        provider=spec.provider,
        strategy=spec.strategy,
        links=_links(record.id),
    )
    # With Redis down the enqueue below fails too, and that is the failure answered.
    with contextlib.suppress(EventLogUnavailable, TimeoutError):
        await asyncio.wait_for(
            runtime.events.append(record.id, "task", accepted.model_dump(mode="json")), 2
        )
    try:
        await runtime.enqueue(record.id)
    except QueueUnavailable:
        with contextlib.suppress(StoreError):  # the sweeper enqueues it once the queue is back
            await store.mark_enqueued(record.id, stale_before=None, at=None)
        raise APIError(
            503,
            f"the queue is unreachable: task {record.id} is recorded as queued and will run "
            f"once the queue is back (GET /task/{record.id}); do not submit it again",
            type="service_unavailable",
            code="queue_unavailable",
            headers={"Retry-After": "5", "Location": f"/task/{record.id}"},
        ) from None
    metrics.JOBS_SUBMITTED.inc()
    return JSONResponse(
        accepted.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/task/{record.id}"},
    )


async def _record(store: JobStore, task_id: str, principal: Principal) -> TaskRecord:
    try:
        record = await store.get(task_id, key_id=None if principal.is_admin else principal.key_id)
    except StoreError:
        raise _storage_unavailable() from None
    if record is None:
        raise _not_found(task_id)
    return record


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such task for this key (task_not_found)"}
}


@router.get(
    "/task/{task_id}",
    response_model=TaskRecordOut,
    summary="A task's status, progress and result",
    responses={
        **_NOT_FOUND,
        503: {"model": ErrorBody, "description": "History unreachable (storage_unavailable)"},
    },
)
async def get_task_status(principal: Admitted, store: StoreDep, task_id: TaskId) -> TaskRecordOut:
    """queued, running (with `progress`), succeeded (with the result), failed or cancelled."""
    record = await _record(store, task_id, principal)  # type: ignore[arg-type]
    return TaskRecordOut.from_record(record, with_trace=True)


@router.post(
    "/task/{task_id}/cancel",
    response_model=TaskRecordOut,
    summary="Cancel a background task",
    responses={
        **_NOT_FOUND,
        202: {"model": TaskRecordOut, "description": "Running: its worker stops it"},
        409: {"model": ErrorBody, "description": "It has ended (not_cancellable)"},
        503: {"model": ErrorBody, "description": "History unreachable (storage_unavailable)"},
    },
)
async def cancel_task(
    principal: Admitted, request: Request, store: StoreDep, task_id: TaskId
) -> JSONResponse:
    """A queued task is cancelled at once and never runs (200); a running one is stopped by
    its worker within about a second, its upstream calls closed, and recorded as cancelled
    with what it spent (202 now, `cancel_requested: true`)."""
    jobs: JobStore = store  # type: ignore[assignment]
    runtime = _runtime(request)
    key_id = None if principal.is_admin else principal.key_id
    try:
        result = await jobs.request_cancel(task_id, key_id)
    except StoreError:
        raise _storage_unavailable() from None
    record = await _record(jobs, task_id, principal)
    if result is None:
        raise APIError(
            409,
            f"task {task_id!r} has ended ({record.status}); only a queued or running task "
            "can be cancelled",
            type="invalid_request_error",
            code="not_cancellable",
        )
    if result == "cancelled":
        metrics.JOBS_FINISHED.labels(status="cancelled").inc()
        await runtime.ended_without_running(record)
    else:
        runtime.cancel_local(task_id)
    out = TaskRecordOut.from_record(record, with_trace=True)
    return JSONResponse(
        out.model_dump(mode="json"), status_code=200 if result == "cancelled" else 202
    )


@router.get(
    "/task/{task_id}/events",
    summary="A task's events, from the start, then live (Server-Sent Events)",
    responses={
        **_NOT_FOUND,
        200: {
            "description": "Server-Sent Events: task, status, call.started, call.finished, "
            "vote, delta, then result or error; `id` is the event's id (send it back as "
            "Last-Event-ID to resume)",
            "content": {"text/event-stream": {}},
        },
        400: {"model": ErrorBody, "description": "Malformed Last-Event-ID (invalid_event_id)"},
    },
)
async def task_events_stream(
    principal: Admitted,
    request: Request,
    store: StoreDep,
    task_id: TaskId,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=64, description="Resume after it")
    ] = None,
) -> TaskEventStream:
    if last_event_id is not None and not valid_event_id(last_event_id):
        raise APIError(
            400,
            "Last-Event-ID must be the id of an event of this stream, e.g. 1733000000000-0",
            type="invalid_request_error",
            code="invalid_event_id",
        )
    jobs: JobStore = store  # type: ignore[assignment]
    record = await _record(jobs, task_id, principal)
    return TaskEventStream(_follow(_runtime(request), jobs, record, last_event_id, principal))


async def _follow(
    runtime: JobRuntime,
    store: JobStore,
    record: TaskRecord,
    after: str | None,
    principal: Principal,
) -> AsyncIterator[bytes]:
    key_id = None if principal.is_admin else principal.key_id
    block = 0.0  # the first read does not wait: an ended task without events ends at once
    while True:
        try:
            found = await runtime.events.read(record.id, after, block=block)
        except EventLogUnavailable:
            found = []
            await asyncio.sleep(1)  # Redis is down: look again (and at the row) shortly
        block = _POLL_SECONDS
        for entry in found:
            after = entry.id
            yield encode_event(entry.event, entry.data, entry.id)
            if entry.event in TERMINAL_EVENTS:
                return
        if found:
            continue
        # Nothing new: is the task over without its last event in the log (a plain task, a
        # worker killed between its commit and its publish, events expired)? End from the row.
        try:
            current = await store.get(record.id, key_id=key_id)
        except StoreError:
            current = None
        if current is not None and current.status in TERMINAL_STATUSES and _settled(current):
            name, data = terminal_event(
                current, None, trace=bool((current.job_options or {}).get("trace"))
            )
            yield encode_event(name, data, after or "0-0")
            return
        yield KEEPALIVE_COMMENT


def _settled(record: TaskRecord) -> bool:
    """The row ended long enough ago that its worker has published its last event, if it
    could (a row's end and its last event are written one after the other)."""
    finished = record.finished_at
    return finished is None or (datetime.now(UTC) - finished).total_seconds() > 2
