"""Server-Sent Events for a running task: the pipeline's events on the wire.

`POST /task` with `"stream": true` (or `Accept: text/event-stream`) answers `200
text/event-stream` at once and then, each as an SSE event with a JSON `data:` line and a
sequential `id:`:

- `task`: the task's `id`, `created_at`, `strategy`, `provider`;
- `call.started`: `call` (its index in the trace), `purpose`, `provider`, `model`, `planned`,
  `started_ms` (ms from the start of the task's run, as its trace step will record);
- `call.finished`: the call's trace step (`started_ms`, `latency_ms`, `usage`, `candidate`,
  `error`, `note`, ...) with `done` and `planned`;
- `vote`: the running vote of a voting strategy: `votes`, `cast`, `planned`, `leader`, `share`;
- `delta`: `call` and `text`, the final call's reply as the upstream streams it;
- `result`: exactly the body a non-streamed `POST /task` returns, after the record is committed;
- `error`: the error envelope `{"error": {"message", "type", "code"}}`, then the stream ends.

A `: ping` comment comes after 15 idle seconds, so proxies keep the connection. A client that
disconnects cancels the task: its upstream calls are closed and it is recorded as `cancelled`
with what it spent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event
from starlette.types import Receive, Scope, Send

import agent_core
from agent_core import AnswerDelta, CallFinished, CallStarted, VoteTally
from api import metrics
from api.budgets import Reservation
from api.errors import APIError, agent_error_message, agent_error_status
from api.persistence import StoreError
from api.redaction import redact
from api.tasks import Outcome, TaskPipeline, TaskSpec
from api.tasks.pipeline import Finished, Heartbeat, Progress, TaskAccepted

__all__ = [
    "HEARTBEAT_SECONDS",
    "TaskEventStream",
    "agent_error_data",
    "encode_event",
    "error_data",
    "progress_data",
    "task_events",
]

log = logging.getLogger("api.task")

HEARTBEAT_SECONDS = 15.0


class TaskEventStream(EventSourceResponse):
    """An SSE response that always watches for the client going away (Starlette does so only
    for servers of ASGI spec < 2.4): a disconnect cancels the body, and with it the task."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(content, headers=headers)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "asgi": {**scope.get("asgi", {}), "spec_version": "2.3"}}
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Runs even when the client left before the body began (then the task never
            # started, and what it reserved in its key's budget is released here).
            if self._on_close is not None:
                await asyncio.shield(self._on_close())


def encode_event(event: str, data: Any, event_id: int | str) -> bytes:
    """One SSE event: its name, one JSON `data:` line and its `id:` (a sequence number for a
    streamed task, the event log's entry id for a background task's)."""
    return format_sse_event(event=event, data_str=orjson.dumps(data).decode(), id=str(event_id))


_encode = encode_event


def progress_data(event: Any, default_model: str | None) -> tuple[str, dict[str, Any]]:
    if isinstance(event, CallStarted):
        return "call.started", {
            "call": event.call,
            "purpose": event.purpose,
            "provider": event.provider,
            "model": event.model or default_model,
            "planned": event.planned,
            "started_ms": event.started_ms,
        }
    if isinstance(event, CallFinished):
        return "call.finished", {
            "call": event.step.index,
            **event.step.to_dict(),
            "done": event.done,
            "planned": event.planned,
        }
    if isinstance(event, VoteTally):
        leader = max(event.votes.items(), key=lambda item: item[1], default=(None, 0))
        return "vote", {
            "votes": event.votes,
            "cast": event.cast,
            "planned": event.planned,
            "leader": leader[0],
            "share": round(leader[1] / event.cast, 4) if event.cast else None,
        }
    assert isinstance(event, AnswerDelta)
    return "delta", {"call": event.call, "text": event.text}


def _error(message: str, type_: str, code: str) -> dict[str, Any]:
    """The one error shape, as `api.errors.error_response` writes it (secrets redacted)."""
    return {"error": {"message": redact(message), "type": type_, "code": code}}


async def task_events(
    pipeline: TaskPipeline,
    spec: TaskSpec,
    key_id: str,
    *,
    result: Callable[[Outcome], dict[str, Any]],
    face: str,
    request_id: str | None,
    started: float,
    reservation: Reservation | None = None,
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed task. `result` renders a succeeded outcome exactly as the
    non-streamed response would."""
    default_model = pipeline.registry.default_model(spec.provider)
    sequence = 0
    outcome_label = "cancelled"  # until the stream ends any other way
    try:
        async for item in pipeline.events(
            spec, key_id, heartbeat=HEARTBEAT_SECONDS, reservation=reservation
        ):
            sequence += 1
            if isinstance(item, TaskAccepted):
                metrics.STREAM_FIRST_EVENT.labels(face=face).observe(time.perf_counter() - started)
                data = {
                    "id": item.id,
                    "object": "task.accepted",
                    "created_at": item.created_at.isoformat(),
                    "strategy": spec.strategy,
                    "provider": spec.provider,
                }
                yield _encode("task", data, sequence)
            elif isinstance(item, Progress):
                name, data = progress_data(item.event, default_model)
                yield _encode(name, data, sequence)
            elif isinstance(item, Heartbeat):
                sequence -= 1
                yield KEEPALIVE_COMMENT
            elif isinstance(item, Finished):
                outcome = item.outcome
                outcome_label = outcome.status
                if outcome.error is not None:
                    yield _encode("error", _agent_error(outcome.error), sequence)
                else:
                    yield _encode("result", result(outcome), sequence)
    except APIError as error:
        # Refused before it ran (a key's budget, for an entry point that did not reserve
        # before starting the stream): the error envelope as the last event.
        outcome_label = error.code
        yield _encode("error", _error(error.message, error.type, error.code), sequence + 1)
    except StoreError as error:
        outcome_label = "storage_unavailable"
        log.error("streamed task not recorded: %s", error)
        message = "the task history could not be written, so the task is not acknowledged"
        yield _encode(
            "error",
            _error(message, "service_unavailable", "storage_unavailable"),
            sequence + 1,
        )
    except Exception:
        # A bug: the client gets the generic error with the request id; the log has the rest.
        outcome_label = "internal_error"
        log.exception("unhandled error in a streamed task")
        message = f"internal error; quote request id {request_id} when reporting it"
        yield _encode("error", _error(message, "server_error", "internal_error"), sequence + 1)
    finally:
        metrics.STREAM_DURATION.labels(face=face, outcome=outcome_label).observe(
            time.perf_counter() - started
        )


def _agent_error(error: agent_core.AgentError) -> dict[str, Any]:
    _, kind, code = agent_error_status(error)
    return _error(agent_error_message(error), kind, code)


# The same renderings for background tasks' event log (api/jobs).
error_data = _error
agent_error_data = _agent_error
