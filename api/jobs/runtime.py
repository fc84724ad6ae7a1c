"""`JobRuntime`: accepts, runs, watches and cancels background tasks.

One object per process, in three roles:

- `api` with REDIS_URL: it accepts tasks (a queued row, then a message on the Redis queue),
  serves their status and events, and requests cancels; workers run them.
- `embedded` (the API without REDIS_URL): the same, and it runs the tasks itself, through
  Taskiq's in-memory broker, with the in-process event log and its own sweeper.
- `worker` (`reasoning-agent worker`): it consumes the Redis queue and runs the tasks.

Running a task: claim its row (queued -> running, under a lease), rebuild its `TaskSpec` from
the row, run it through the one `TaskPipeline` with the same progress events as a stream
(published to the event log and summed up as the row's `progress`), renew the lease every
second or so (which is also how a cancel request is noticed), and finish the same row, guarded
by the lease owner. See docs/architecture.md, "The life of a background task".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from taskiq import AsyncBroker
from taskiq.receiver import Receiver
from taskiq_redis import ListQueueBroker

import agent_core
from agent_core import AgentEvent, CallFinished, CallStarted, VoteTally
from api import metrics
from api.config import ServiceSettings
from api.errors import APIError
from api.jobs import callbacks
from api.jobs.events import (
    EventLog,
    EventLogUnavailable,
    MemoryEventLog,
    RedisEventLog,
)
from api.jobs.queue import QueueUnavailable, make_broker, queue_depth, register
from api.persistence import StoreError
from api.persistence.records import JobStore, TaskRecord
from api.redaction import redact
from api.streaming import agent_error_data, error_data, progress_data
from api.tasks import TaskPipeline, TaskRejected, TaskSpec
from api.tasks.pipeline import Outcome
from providers import ProviderRegistry
from providers.task_options import TaskOptions

__all__ = ["RETRYABLE_CODES", "JobRuntime", "QueueUnavailable", "Role"]

log = logging.getLogger("api.jobs")

Role = Literal["api", "embedded", "worker"]

RETRYABLE_CODES: Final = frozenset({"unavailable", "timeout", "rate_limited"})
"""Error codes a background task is retried for (the upstream was unavailable); any other
failure (an invalid request, a budget, an authentication failure, a bug) is final."""

_SWEEP_BATCH: Final = 500


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _Job:
    """One claimed task while it runs: its progress, its events, and why it stopped."""

    def __init__(self, runtime: JobRuntime, record: TaskRecord, owner: str) -> None:
        self.runtime = runtime
        self.record = record
        self.owner = owner
        self.stop_reason: Literal["cancel", "lost", "handback"] | None = None
        self.ended: TaskRecord | None = None  # the record the pipeline built
        self.finished = False  # the row now holds the outcome
        self.released_for: float | None = None  # handed back or retried after this wait
        self.progress: dict[str, Any] = {
            "calls_done": 0,
            "calls_planned": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "votes": None,
            "attempt": record.attempts,
        }
        self._outbox: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._publisher = asyncio.create_task(self._publish())
        self.default_model: str | None = None

    # -- progress and events --------------------------------------------------------------

    def on_event(self, event: AgentEvent) -> None:
        name, data = progress_data(event, self.default_model)
        if isinstance(event, CallStarted):
            self.progress["calls_planned"] = event.planned
        elif isinstance(event, CallFinished):
            self.progress["calls_done"] = event.done
            self.progress["calls_planned"] = event.planned
            usage = event.step.usage
            self.progress["prompt_tokens"] += usage.prompt_tokens
            self.progress["completion_tokens"] += usage.completion_tokens
        elif isinstance(event, VoteTally):
            self.progress["votes"] = {
                key: data[key] for key in ("votes", "cast", "planned", "leader", "share")
            }
        self._outbox.put_nowait((name, data))

    def emit(self, name: str, data: dict[str, Any]) -> None:
        self._outbox.put_nowait((name, data))

    async def _publish(self) -> None:
        warned = False
        while (item := await self._outbox.get()) is not None:
            try:
                await self.runtime.events.append(self.record.id, *item)
            except EventLogUnavailable as error:
                if not warned:
                    log.warning("task events not published (%s)", error, extra=self._extra())
                    warned = True

    async def flush(self) -> None:
        self._outbox.put_nowait(None)
        await self._publisher

    def _extra(self) -> dict[str, Any]:
        return {"task_id": self.record.id, "key_id": self.record.key_id}

    # -- how it ends ----------------------------------------------------------------------

    async def commit(self, ended: TaskRecord) -> None:
        """The pipeline's commit: finish the row, or hand it back or retry it."""
        self.ended = dataclasses.replace(ended, progress=dict(self.progress))
        store = self.runtime.store
        if self.stop_reason == "lost":
            return  # another worker holds it now; nothing of ours may be written
        if self.stop_reason == "handback":
            if await store.release(self.record.id, self.owner, enqueue_after=0):
                self.released_for = 0.0
            return
        retry = self.runtime.retry_delay(ended, self.record.attempts)
        if retry is not None:
            if await store.release(self.record.id, self.owner, enqueue_after=retry):
                self.released_for = retry
            return
        self.finished = await store.finish(self.ended, self.owner)
        if not self.finished:
            log.warning("task finished after its lease was lost; not recorded", extra=self._extra())


class JobRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        store: JobStore,
        pipeline: TaskPipeline,
        registry: ProviderRegistry,
        *,
        role: Role,
    ) -> None:
        self.settings = settings
        self.store = store
        self.pipeline = pipeline
        self.registry = registry
        self.role = role
        redis_url = settings.redis_url
        if role != "embedded" and redis_url is None:
            raise ValueError("REDIS_URL is required for a worker")
        self.broker: AsyncBroker = make_broker(
            None if role == "embedded" else redis_url,
            prefix=settings.job_key_prefix,
            concurrency=settings.job_concurrency,
        )
        self._kicker = register(self.broker, self.execute)
        self.events: EventLog = (
            MemoryEventLog(
                retention_seconds=settings.job_events_retention_seconds,
                max_events=settings.job_events_max,
            )
            if redis_url is None or role == "embedded"
            else RedisEventLog(
                redis_url,
                prefix=settings.job_key_prefix,
                retention_seconds=settings.job_events_retention_seconds,
                max_events=settings.job_events_max,
            )
        )
        self.owner = worker_id()
        self.runs_tasks = role in ("embedded", "worker")
        self._slots = asyncio.Semaphore(settings.job_concurrency)
        self._running: dict[str, tuple[asyncio.Task[Outcome], _Job]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._executions: set[asyncio.Task[Any]] = set()  # queue deliveries being handled
        self._pending: dict[str, int] = {}  # task id -> its deliveries being handled here
        self._sweeper: asyncio.Task[None] | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._stop_fetching = asyncio.Event()
        self._stopping = False
        self.last_sweep: float | None = None

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.runs_tasks:
            # The sending side of the list broker needs no start-up (kiq opens connections
            # from the pool as it needs them).
            await self.broker.startup()
        if self.role == "worker":
            self.broker.is_worker_process = True
            receiver = Receiver(
                self.broker,
                max_async_tasks=self.settings.job_concurrency,
                max_prefetch=0,
                propagate_exceptions=False,
                run_startup=False,
                wait_tasks_timeout=self.settings.job_shutdown_seconds,
            )
            self._receiver = asyncio.create_task(receiver.listen(self._stop_fetching))
        if self.runs_tasks:
            # The in-memory queue of an earlier embedded process died with it: enqueue again
            # what it left queued, at once (stale_before=now); a worker waits the usual time.
            first = datetime.now(UTC) if self.role == "embedded" else None
            self._sweeper = asyncio.create_task(self._sweep_loop(first))

    async def aclose(self) -> None:
        """Stops taking tasks, lets running ones finish for JOB_SHUTDOWN_SECONDS, hands the
        rest back to the queue, and closes the broker and the event log."""
        self._stopping = True
        self._stop_fetching.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        running = [task for task, _ in self._running.values()]
        if running:
            log.info("waiting for %d running background task(s)", len(running))
            await asyncio.wait(running, timeout=self.settings.job_shutdown_seconds)
        for task, job in list(self._running.values()):
            if not task.done():
                job.stop_reason = "handback"
                task.cancel()
        if self._running:
            await asyncio.gather(
                *(task for task, _ in self._running.values()), return_exceptions=True
            )
        # Deliveries waiting for a slot see the stop and leave their task queued; executions
        # finish their bookkeeping (events, the hand-back's enqueue) before we close.
        if self._executions:
            await asyncio.wait(set(self._executions), timeout=5)
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        if self._receiver is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._receiver, timeout=5)
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        with contextlib.suppress(Exception):
            if self.runs_tasks:
                await self.broker.shutdown()
            elif isinstance(self.broker, ListQueueBroker):
                await self.broker.connection_pool.disconnect()
        await self.events.aclose()

    @property
    def running(self) -> int:
        return len(self._running)

    def healthy(self) -> bool:
        """The receiver and the sweeper are alive."""
        for task in (self._receiver, self._sweeper):
            if task is not None and task.done() and not self._stopping:
                return False
        return True

    # -- accepting -------------------------------------------------------------------------

    async def enqueue(self, task_id: str) -> None:
        """Puts the task on the queue. :raises QueueUnavailable: the broker is unreachable
        (the task stays queued in the history; the sweeper enqueues it later)."""
        try:
            await asyncio.wait_for(self._kicker.kiq(task_id), timeout=5)
        except (TimeoutError, OSError, ConnectionError) as error:
            raise QueueUnavailable(type(error).__name__) from None
        except Exception as error:  # redis' errors and taskiq's wrappers of them
            if type(error).__module__.startswith(("redis", "taskiq")):
                raise QueueUnavailable(type(error).__name__) from None
            raise

    def retry_delay(self, ended: TaskRecord, attempts: int) -> float | None:
        """Seconds before a retry of a failed attempt, or None: it is final."""
        if ended.status != "failed" or ended.error_code not in RETRYABLE_CODES:
            return None
        if attempts >= self.settings.job_max_attempts or self._stopping:
            return None
        return float(self.settings.job_retry_seconds * (2 ** (attempts - 1)))

    async def ended_without_running(self, record: TaskRecord) -> None:
        """A queued task was cancelled: its last event, and its callback."""
        trace = bool((record.job_options or {}).get("trace"))
        name, data = terminal_event(record, None, trace=trace)
        with contextlib.suppress(EventLogUnavailable):
            await self.events.append(record.id, name, data)
            await self.events.ended(record.id)
        url = (record.job_options or {}).get("callback_url")
        if url:
            self._spawn(self._callback(record.id, url, record))

    def cancel_local(self, task_id: str) -> bool:
        """Cancels the task at once if it runs in this process."""
        entry = self._running.get(task_id)
        if entry is None:
            return False
        task, job = entry
        job.stop_reason = "cancel"
        task.cancel()
        return True

    # -- running ---------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def execute(self, task_id: str) -> None:
        """The queue's task: run background task `task_id` if it can be claimed."""
        current = asyncio.current_task()
        if current is not None:
            self._executions.add(current)
        self._pending[task_id] = self._pending.get(task_id, 0) + 1
        try:
            async with self._slots:
                if self._stopping:
                    return  # not claimed: the sweeper hands it to another worker
                try:
                    claim = await self.store.claim(
                        task_id, self.owner, self.settings.job_lease_seconds
                    )
                    if claim is None:
                        return  # another worker has it, it ended, or a duplicate message
                    await self._run_claimed(claim.record)
                except StoreError as error:
                    # The row keeps its state: a lease that is not renewed expires, and the
                    # sweeper hands the task out again.
                    log.error("background task: %s", error, extra={"task_id": task_id})
        finally:
            if current is not None:
                self._executions.discard(current)
            left = self._pending.pop(task_id, 1) - 1
            if left > 0:
                self._pending[task_id] = left

    async def _run_claimed(self, record: TaskRecord) -> None:
        job = _Job(self, record, self.owner)
        extra = {"task_id": record.id, "key_id": record.key_id}
        if record.attempts > 1:
            metrics.JOB_RETRIES.labels(reason="rerun").inc()
        else:
            metrics.JOB_QUEUE_WAIT.observe(
                max(0.0, (datetime.now(UTC) - record.created_at).total_seconds())
            )
        if record.attempts > self.settings.job_max_attempts:
            # Claimed more often than allowed: every earlier run died mid-task (a task that
            # kills its worker must not take them all down in turn).
            message = f"stopped after {record.attempts - 1} interrupted runs (JOB_MAX_ATTEMPTS)"
            await self._end_without_running(job, "attempts_exhausted", message)
            return
        try:
            spec = self._spec(record)
        except TaskRejected as rejected:
            await self._end_without_running(job, rejected.code, rejected.message)
            return
        try:
            # A budgeted key's background task is held to its budget like any other.
            reservation = await self.pipeline.reserve(spec, record.key_id)
        except APIError as refused:
            await self._end_without_running(job, refused.code, refused.message)
            return
        job.default_model = self.registry.default_model(spec.provider)
        job.emit("status", {"status": "running", "attempt": record.attempts})
        started = time.perf_counter()
        task = asyncio.ensure_future(
            self.pipeline.run_job(
                spec,
                record.key_id,
                task_id=record.id,
                created_at=record.created_at,
                commit=job.commit,
                on_event=job.on_event,
                reservation=reservation,
            )
        )
        self._running[record.id] = (task, job)
        metrics.JOBS_RUNNING.inc()
        try:
            await self._watch(task, job)
        finally:
            self._running.pop(record.id, None)
            metrics.JOBS_RUNNING.dec()
        error = None if task.cancelled() else task.exception()
        if error is not None and not isinstance(error, StoreError):
            log.error(
                "background task hit a bug: %s",
                type(error).__name__,
                extra=extra,
                exc_info=error,
            )
        elif isinstance(error, StoreError):
            log.error("background task not recorded: %s", error, extra=extra)
        outcome = None if task.cancelled() or error is not None else task.result()
        label = job.ended.status if job.ended is not None else "error"
        metrics.JOB_DURATION.labels(outcome=label).observe(time.perf_counter() - started)
        await self._after(job, outcome)

    async def _watch(self, task: asyncio.Future[Outcome], job: _Job) -> None:
        """Renews the lease while the task runs; a cancel request or a lost lease stops it."""
        lease = self.settings.job_lease_seconds
        interval = min(1.0, lease / 3)
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return
            try:
                state = await self.store.renew(job.record.id, job.owner, lease, job.progress)
            except StoreError as error:
                log.warning("lease not renewed: %s", error, extra=job._extra())
                continue
            if state != "ok" and job.stop_reason is None:
                job.stop_reason = "cancel" if state == "cancel" else "lost"
                if state == "lost":
                    log.warning("lease lost; stopping the task", extra=job._extra())
                task.cancel()

    async def _end_without_running(self, job: _Job, code: str, message: str) -> None:
        ended = dataclasses.replace(
            job.record,
            status="failed",
            error_code=code,
            error_message=message,
            provider=job.record.provider,
        )
        await job.commit(ended)
        await self._after(job, None)

    async def _after(self, job: _Job, outcome: Outcome | None) -> None:
        """Events, metrics, the callback and any re-enqueue, once the row is written."""
        record = job.record
        if job.released_for is not None:
            reason = "handback" if job.stop_reason == "handback" else "retry"
            metrics.JOB_RETRIES.labels(reason=reason).inc()
            job.emit("status", {"status": "queued", "reason": reason, "retry_in": job.released_for})
            await job.flush()
            self._spawn(self._enqueue_later(record.id, job.released_for))
            return
        if not job.finished or job.ended is None:
            await job.flush()
            return
        ended = job.ended
        metrics.JOBS_FINISHED.labels(status=ended.status).inc()
        name, data = terminal_event(
            ended, outcome, trace=bool((record.job_options or {}).get("trace"))
        )
        job.emit(name, data)
        await job.flush()
        with contextlib.suppress(EventLogUnavailable):
            await self.events.ended(record.id)
        url = (record.job_options or {}).get("callback_url")
        if url:
            self._spawn(self._callback(record.id, url, ended))

    async def _enqueue_later(self, task_id: str, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            await self.enqueue(task_id)
            await self.store.mark_enqueued(task_id, stale_before=None)
        except (QueueUnavailable, StoreError) as error:
            log.warning("not re-enqueued (%s); the sweeper will", error, extra={"task_id": task_id})

    async def _callback(self, task_id: str, url: str, ended: TaskRecord) -> None:
        from api.routes.schemas import TaskRecordOut

        secret = self.settings.callback_secret
        if secret is None:
            return
        payload = TaskRecordOut.from_record(ended, with_trace=True).model_dump(mode="json")
        outcome = await callbacks.deliver(
            url,
            payload,
            secret=secret.get_secret_value(),
            attempt_seconds=self.settings.callback_timeout_seconds,
            max_attempts=self.settings.callback_max_attempts,
            retry_seconds=self.settings.callback_retry_seconds,
        )
        try:
            await self.store.record_callback(task_id, outcome)
        except StoreError as error:
            log.warning("callback outcome not recorded: %s", error, extra={"task_id": task_id})

    def _spec(self, record: TaskRecord) -> TaskSpec:
        try:
            options = TaskOptions.model_validate(record.params)
        except ValueError:
            raise TaskRejected("invalid_request", "the task's stored options are invalid") from None
        return TaskSpec.resolve(
            self.registry,
            prompt=record.prompt,
            system=record.system,
            provider=record.provider,
            model=record.model,
            strategy=record.strategy,
            options=options,
            source="job",
        )

    # -- the sweeper -----------------------------------------------------------------------

    async def _sweep_loop(self, first: datetime | None) -> None:
        stale_before = first
        while True:
            try:
                await self.sweep(stale_before)
            except StoreError as error:
                log.warning("sweep failed: %s", error)
            except Exception:
                log.exception("sweep failed")
            await asyncio.sleep(self.settings.job_sweep_seconds)
            stale_before = None

    async def sweep(self, stale_before: datetime | None = None) -> int:
        """Enqueues again the tasks the queue may have lost; returns how many."""
        cutoff = stale_before or datetime.now(UTC) - timedelta(
            seconds=self.settings.job_requeue_seconds
        )
        counts = await self.store.count_by_status()
        metrics.JOBS_QUEUED.set(counts.get("queued", 0))
        self.last_sweep = time.monotonic()
        # While messages wait on the Redis list, a queued task is most likely one of them (a
        # backlog, not a loss): only tasks never enqueued and expired leases are due then, so
        # a long backlog is not duplicated every round.
        depth = await self.depth()
        due = await self.store.due_for_requeue(cutoff, _SWEEP_BATCH, queued_stale=not depth)
        sent = 0
        for task_id in due:
            if task_id in self._pending:
                continue  # delivered here, waiting for a slot: not lost
            # The guarded mark makes one sweeper (of many workers) the one that re-enqueues.
            if not await self.store.mark_enqueued(task_id, stale_before=cutoff):
                continue
            try:
                await self.enqueue(task_id)
            except QueueUnavailable as error:
                await self.store.mark_enqueued(task_id, stale_before=None, at=None)
                log.warning("sweeper cannot reach the queue (%s)", error)
                break
            metrics.JOB_RETRIES.labels(reason="requeue").inc()
            sent += 1
        if sent:
            log.info("sweeper enqueued %d task(s) again", sent)
        return sent

    async def depth(self) -> int | None:
        return await queue_depth(self.broker)


def terminal_event(
    ended: TaskRecord, outcome: Outcome | None, *, trace: bool
) -> tuple[str, dict[str, Any]]:
    """The last event of a background task: `result` (the body a plain POST /task answers
    with) or `error` (the error envelope; code `cancelled` for a cancelled task)."""
    if ended.status == "succeeded" and outcome is not None and outcome.answer is not None:
        from api.routes.task import task_response

        return "result", task_response(outcome, trace=trace).model_dump(mode="json")
    if ended.status == "succeeded":
        from api.routes.schemas import TaskRecordOut

        return "result", TaskRecordOut.from_record(ended, with_trace=trace).model_dump(mode="json")
    if outcome is not None and isinstance(outcome.error, agent_core.AgentError):
        return "error", agent_error_data(outcome.error)
    code = ended.error_code or "failed"
    kind = "cancelled" if ended.status == "cancelled" else "server_error"
    if code in ("unknown_provider", "unknown_strategy", "invalid_request", "budget_exceeded"):
        kind = "invalid_request_error"
    return "error", error_data(redact(ended.error_message or code), kind, code)
