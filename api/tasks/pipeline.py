"""`TaskPipeline`: runs a task for a principal, records it, then says how it ended.

Every entry point runs tasks through here, so a task is validated, run, counted and recorded
the same way whether it came as `POST /task`, a stream, `/v1`, the CLI or a background job:

- `run(spec, key_id)` is the plain path: no progress is built; it returns the `Outcome` once
  the record is committed.
- `run_job(spec, key_id, task_id=..., commit=...)` is a background task's: it runs under the id
  the task was accepted with, reports progress to `on_event`, and hands the ended record to
  `commit` (which finishes the task's existing row) instead of adding one.
- `events(spec, key_id)` is the observed path: it yields `TaskAccepted` (the id) first, then
  `Progress` events as the task runs, and last `Finished` with the outcome, after the record is
  committed. If the consumer goes away (a client disconnects), the task is cancelled (its
  upstream calls with it) and recorded as `cancelled` with what it spent.

A record is committed before anyone is told the outcome: a task that was answered can always be
found again. A record that cannot be written raises `StoreError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import agent_core
from agent_core import AgentEvent, Answer, ReasoningAgent, Run
from api import metrics
from api.ids import new_task_id
from api.persistence.records import TaskRecord, TaskStatus, TaskStore
from api.redaction import redact
from api.tasks.spec import TaskSpec
from providers import ProviderRegistry

__all__ = [
    "Finished",
    "Heartbeat",
    "Outcome",
    "PipelineEvent",
    "Progress",
    "TaskAccepted",
    "TaskPipeline",
]

log = logging.getLogger("api.task")

OutcomeStatus = TaskStatus


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a task ended, once its record is committed."""

    status: OutcomeStatus
    record: TaskRecord
    answer: Answer | None = None  # succeeded
    error: agent_core.AgentError | None = None  # failed with an engine or provider error


@dataclass(frozen=True, slots=True)
class TaskAccepted:
    """The task has an id and is about to run."""

    id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Progress:
    """Something happened while the task ran (`agent_core.events`)."""

    event: AgentEvent


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Nothing happened for a while (the consumer may keep an idle connection alive)."""


@dataclass(frozen=True, slots=True)
class Finished:
    """The task ended and its record is committed."""

    outcome: Outcome


PipelineEvent = TaskAccepted | Progress | Heartbeat | Finished

Commit = Callable[[TaskRecord], Awaitable[None]]
"""Records an ended task somewhere other than `store.add` (a background task's own row)."""


class _Recorder:
    """Builds the task's record, whatever the outcome, from one set of common fields."""

    def __init__(
        self,
        spec: TaskSpec,
        key_id: str,
        registry: ProviderRegistry,
        *,
        task_id: str | None = None,
        created_at: datetime | None = None,
        commit: Commit | None = None,
        cancel_message: str = "cancelled before it ended (the client went away)",
    ) -> None:
        self.spec = spec
        self.key_id = key_id
        self.id = task_id or new_task_id()
        self.created_at = created_at or datetime.now(UTC)
        self.commit = commit
        self.cancel_message = cancel_message
        self.started = time.perf_counter()
        self.default_model = registry.default_model(spec.provider)

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def _record(self, **fields: Any) -> TaskRecord:
        spec = self.spec
        common: dict[str, Any] = {
            "id": self.id,
            "key_id": self.key_id,
            "created_at": self.created_at,
            "prompt": spec.prompt,
            "system": spec.system,
            "strategy": spec.strategy,
            "params": spec.given,
            "latency_ms": self.seconds() * 1000,
            "source": spec.source,
        }
        return TaskRecord(**common, **fields)

    def succeeded(self, answer: Answer) -> TaskRecord:
        usage = answer.usage
        return self._record(
            status="succeeded",
            provider=answer.provider or self.spec.provider,
            model=answer.model or self.spec.model or self.default_model,
            answer=answer.text,
            confidence=answer.confidence,
            votes=answer.votes,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            calls=answer.calls,
            error_code=None,
            error_message=None,
            trace=[step.to_dict() for step in answer.steps],
            budget_exhausted=answer.budget_exhausted,
        )

    def ended_early(
        self,
        status: OutcomeStatus,
        code: str,
        message: str,
        steps: list[agent_core.Step],
        usage: agent_core.Usage,
    ) -> TaskRecord:
        """A failed or cancelled task, with the calls and tokens it spent before it ended."""
        return self._record(
            status=status,
            provider=self.spec.provider,
            model=self.spec.model or self.default_model,
            answer=None,
            confidence=None,
            votes=None,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            calls=len(steps),
            error_code=code,
            error_message=message[:2000],
            trace=[step.to_dict() for step in steps] or None,
            budget_exhausted=code == "budget_exceeded",
        )


class TaskPipeline:
    """Runs tasks against a provider registry and records them in a history store (`None`:
    nothing is recorded, as for the CLI)."""

    def __init__(self, registry: ProviderRegistry, store: TaskStore | None) -> None:
        self.registry = registry
        self.store = store
        # Tasks whose consumer went away finish recording here, out of its cancellation.
        self._detached: set[asyncio.Task[Outcome]] = set()

    async def run(self, spec: TaskSpec, key_id: str) -> Outcome:
        """Runs `spec` and records it; the outcome once the record is committed.

        :raises StoreError: the record could not be committed (the outcome is not known to
            anyone, so it is not acknowledged).
        """
        return await self._execute(_Recorder(spec, key_id, self.registry), None)

    async def run_job(
        self,
        spec: TaskSpec,
        key_id: str,
        *,
        task_id: str,
        created_at: datetime,
        commit: Commit,
        on_event: Callable[[AgentEvent], None] | None = None,
    ) -> Outcome:
        """Runs a background task under its accepted id; `commit` records how it ended (a
        cancellation too, before the `CancelledError` propagates)."""
        recorder = _Recorder(
            spec,
            key_id,
            self.registry,
            task_id=task_id,
            created_at=created_at,
            commit=commit,
            cancel_message="cancelled on request before it ended",
        )
        return await self._execute(recorder, on_event)

    async def events(
        self, spec: TaskSpec, key_id: str, *, heartbeat: float | None = None
    ) -> AsyncGenerator[PipelineEvent, None]:
        """Runs `spec`, yielding its progress; the last event is `Finished`, after the record
        is committed. Closing the iterator early cancels the task (recorded as cancelled).
        With `heartbeat`, a `Heartbeat` comes after that many idle seconds.

        :raises StoreError: the record could not be committed.
        """
        recorder = _Recorder(spec, key_id, self.registry)
        queue: asyncio.Queue[PipelineEvent] = asyncio.Queue()
        yield TaskAccepted(recorder.id, recorder.created_at)
        job = asyncio.ensure_future(
            self._execute(recorder, lambda event: queue.put_nowait(Progress(event)))
        )
        job.add_done_callback(lambda _: queue.put_nowait(_DONE))
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), heartbeat)
                except TimeoutError:
                    yield Heartbeat()
                    continue
                if event is _DONE:
                    yield Finished(job.result())
                    return
                yield event
        finally:
            if not job.done():
                # The consumer went away: the task is cancelled and records itself as such.
                job.cancel()
                self._detached.add(job)
                job.add_done_callback(self._detached.discard)

    async def _execute(
        self, recorder: _Recorder, on_event: Callable[[AgentEvent], None] | None
    ) -> Outcome:
        spec = recorder.spec
        run: Run | None = None
        try:
            provider = self.registry.get(spec.provider)
            task = agent_core.Task(
                spec.prompt,
                strategy=spec.strategy,
                system=spec.system,
                model=spec.model,
                **spec.options,
            )
            run = Run(task)
            answer = await ReasoningAgent(provider).drive(run, on_event=on_event)
        except agent_core.AgentError as error:
            # The engine put on the error what the task did before failing.
            code = str(getattr(error, "code", "provider_error"))
            message = redact(error.message or str(error))
            record = recorder.ended_early("failed", code, message, error.steps, error.usage)
            await self._commit(record, recorder, error.steps)
            log.info(
                "task failed: %s", code, extra={"task_id": record.id, "key_id": recorder.key_id}
            )
            return Outcome("failed", record, error=error)
        except asyncio.CancelledError:
            steps, usage = _spent(run)
            message = recorder.cancel_message
            record = recorder.ended_early("cancelled", "cancelled", message, steps, usage)
            await self._commit(record, recorder, steps)
            log.info("task cancelled", extra={"task_id": record.id, "key_id": recorder.key_id})
            raise
        except Exception as error:
            # A bug: recorded as failed (its message may hold anything, so only its type),
            # then raised for the caller's last-resort handler.
            steps, usage = _spent(run)
            message = f"internal error ({type(error).__name__})"
            record = recorder.ended_early("failed", "internal_error", message, steps, usage)
            await self._commit(record, recorder, steps)
            raise
        record = recorder.succeeded(answer)
        await self._commit(record, recorder, answer.steps)
        return Outcome("succeeded", record, answer=answer)

    async def _commit(
        self, record: TaskRecord, recorder: _Recorder, steps: list[agent_core.Step]
    ) -> None:
        """Commits the record (when there is a store), then counts the task."""
        if recorder.commit is not None:
            await recorder.commit(record)
        elif self.store is not None:
            started = time.perf_counter()
            await self.store.add(record)
            metrics.HISTORY_WRITE_LATENCY.observe(time.perf_counter() - started)
        metrics.observe_task(
            provider=record.provider or recorder.spec.provider,
            model=record.model,
            strategy=record.strategy,
            outcome=record.error_code or record.status,
            seconds=recorder.seconds(),
            steps=steps,
        )

    async def aclose(self) -> None:
        """Waits for cancelled tasks to finish recording (at shutdown)."""
        if self._detached:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._detached, return_exceptions=True)


_DONE: Any = object()  # the queue's end marker


def _spent(run: Run | None) -> tuple[list[agent_core.Step], agent_core.Usage]:
    """What a task that ended early had spent: its trace and tokens so far."""
    if run is None:
        return [], agent_core.Usage()
    return run.trace, run.usage
