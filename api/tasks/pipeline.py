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
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import agent_core
from agent_core import AgentEvent, Answer, Provider, ReasoningAgent, Run
from api import metrics
from api.budgets import Ledger, Reservation, UnpricedForBudget
from api.ids import new_task_id
from api.persistence.records import TaskRecord, TaskStatus, TaskStore
from api.redaction import redact
from api.tasks.spec import TaskSpec
from providers import ProviderRegistry
from providers.panel import Panel, PanelMember, Unavailable

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
    panel: bool = False  # a vote across providers


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
        reservation: Reservation | None = None,
        *,
        task_id: str | None = None,
        created_at: datetime | None = None,
        commit: Commit | None = None,
        cancel_message: str = "cancelled before it ended (the client went away)",
    ) -> None:
        # A budgeted key's task runs within what it reserved: the engine enforces max_cost_usd.
        if reservation is not None:
            spec = dataclasses.replace(
                spec, options={**spec.options, "max_cost_usd": reservation.usd}
            )
        self.spec = spec
        self.reservation = reservation
        self.prices = registry.settings.price_table
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
            trace=self.trace(answer.steps),
            budget_exhausted=answer.budget_exhausted,
            sampling=answer.sampling.to_dict() if answer.sampling is not None else None,
            providers_used=_providers_used(answer.steps),
        )

    def trace(self, steps: list[agent_core.Step]) -> list[dict[str, Any]]:
        """The steps as the history keeps them, each with what it cost (`None`: unknown)."""
        out = []
        for step in steps:
            data = step.to_dict()
            model = step.model or self.spec.model or self.default_model
            data["cost_usd"] = self.prices.cost(step.provider, model, step.usage)
            out.append(data)
        return out

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
            trace=self.trace(steps) or None,
            providers_used=_providers_used(steps),
            budget_exhausted=code == "budget_exceeded",
        )


class TaskPipeline:
    """Runs tasks against a provider registry and records them in a history store (`None`:
    nothing is recorded, as for the CLI), within the keys' spend budgets (`api.budgets`; `None`:
    none)."""

    def __init__(
        self, registry: ProviderRegistry, store: TaskStore | None, budgets: Ledger | None = None
    ) -> None:
        self.registry = registry
        self.store = store
        self.budgets = budgets
        # Tasks whose consumer went away finish recording here, out of its cancellation.
        self._detached: set[asyncio.Task[Outcome]] = set()
        self._settling: set[asyncio.Future[None]] = set()

    async def reserve(self, spec: TaskSpec, key_id: str) -> Reservation | None:
        """Reserves the task's spend in its key's budget (None: the key has none, and nothing
        was looked up). `run` and `events` call it unless given a reservation; an entry point
        that must refuse before it answers (a stream) calls it first.

        :raises api.budgets.BudgetExhausted: 402, too little left.
        :raises api.budgets.BudgetUnavailable: 503, the budget store is down (mode `reject`).
        :raises api.budgets.UnpricedForBudget: 400, the model has no price to bound its cost.
        """
        if self.budgets is None or self.budgets.budget_of(key_id) is None:
            return None
        if spec.price is None:
            metrics.BUDGET_REFUSALS.labels(reason="unpriced").inc()
            raise UnpricedForBudget()
        return await self.budgets.reserve(key_id, spec.options.get("max_cost_usd"))

    async def run(
        self, spec: TaskSpec, key_id: str, *, reservation: Reservation | None = None
    ) -> Outcome:
        """Runs `spec` and records it; the outcome once the record is committed.

        :raises StoreError: the record could not be committed (the outcome is not known to
            anyone, so it is not acknowledged).
        :raises APIError: the key's budget refused the task (see `reserve`); nothing ran.
        """
        if reservation is None:
            reservation = await self.reserve(spec, key_id)
        if reservation is not None:
            reservation.started = True
        try:
            return await self._execute(_Recorder(spec, key_id, self.registry, reservation), None)
        finally:
            await self._settle(reservation, None)  # only if the task never reached its record

    async def run_job(
        self,
        spec: TaskSpec,
        key_id: str,
        *,
        task_id: str,
        created_at: datetime,
        commit: Commit,
        on_event: Callable[[AgentEvent], None] | None = None,
        reservation: Reservation | None = None,
    ) -> Outcome:
        """Runs a background task under its accepted id; `commit` records how it ended (a
        cancellation too, before the `CancelledError` propagates). `reservation`: what the
        worker reserved of the key's budget for it (`reserve`)."""
        if reservation is not None:
            reservation.started = True
        recorder = _Recorder(
            spec,
            key_id,
            self.registry,
            reservation,
            task_id=task_id,
            created_at=created_at,
            commit=commit,
            cancel_message="cancelled on request before it ended",
        )
        try:
            return await self._execute(recorder, on_event)
        finally:
            await self._settle(reservation, None)  # only if the task never reached its record

    async def events(
        self,
        spec: TaskSpec,
        key_id: str,
        *,
        heartbeat: float | None = None,
        reservation: Reservation | None = None,
    ) -> AsyncGenerator[PipelineEvent, None]:
        """Runs `spec`, yielding its progress; the last event is `Finished`, after the record
        is committed. Closing the iterator early cancels the task (recorded as cancelled).
        With `heartbeat`, a `Heartbeat` comes after that many idle seconds.

        :raises StoreError: the record could not be committed.
        :raises APIError: the key's budget refused the task (see `reserve`), before any event.
        """
        if reservation is None:
            reservation = await self.reserve(spec, key_id)
        if reservation is not None:
            reservation.started = True
        recorder = _Recorder(spec, key_id, self.registry, reservation)
        queue: asyncio.Queue[PipelineEvent] = asyncio.Queue()
        try:
            yield TaskAccepted(recorder.id, recorder.created_at)
        except BaseException:
            # Closed before the task started (the consumer went away): nothing was spent.
            if reservation is not None:
                self._settle_later(reservation)
            raise
        job = asyncio.ensure_future(
            self._execute(recorder, lambda event: queue.put_nowait(Progress(event)))
        )
        job.add_done_callback(lambda _: queue.put_nowait(_DONE))
        if reservation is not None:
            # A job cancelled before it began never reaches its record: release it then.
            job.add_done_callback(lambda _: self._settle_later(reservation))
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
            provider = self._provider(spec)
            price_input, price_output = spec.price or (None, None)
            task = agent_core.Task(
                spec.prompt,
                strategy=spec.strategy,
                system=spec.system,
                model=spec.model,
                price_input=price_input,
                price_output=price_output,
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
        return Outcome("succeeded", record, answer=answer, panel=bool(spec.panel))

    async def _commit(
        self, record: TaskRecord, recorder: _Recorder, steps: list[agent_core.Step]
    ) -> None:
        """Commits the record (a background task's own way, or to the store when there is
        one), settles the task's spend with its key's budget (even when the record cannot be
        written), then counts the task."""
        try:
            if recorder.commit is not None:
                await recorder.commit(record)
            elif self.store is not None:
                started = time.perf_counter()
                await self.store.add(record)
                metrics.HISTORY_WRITE_LATENCY.observe(time.perf_counter() - started)
        finally:
            await self._settle(recorder.reservation, record)
        for step in record.trace or ():
            cost = step.get("cost_usd")
            if cost:
                metrics.child(
                    metrics.COST,
                    str(step.get("provider") or record.provider),
                    metrics.model_label(step.get("model")),
                ).inc(cost)
        metrics.observe_task(
            provider=record.provider or recorder.spec.provider,
            model=record.model,
            strategy=record.strategy,
            outcome=record.error_code or record.status,
            seconds=recorder.seconds(),
            steps=steps,
        )

    async def _settle(self, reservation: Reservation | None, record: TaskRecord | None) -> None:
        """Releases the reservation and charges what the record says the task spent (no record:
        the task never started, nothing was spent). Shielded: a second cancellation (shutdown)
        does not stop the settlement half-way."""
        if reservation is None or reservation.settled or self.budgets is None:
            return
        steps = (record.trace or []) if record is not None else []
        spent = sum(float(step.get("cost_usd") or 0.0) for step in steps)
        if any(step.get("cost_usd") is None for step in steps):
            # A call of unknown price (a fallback to an unpriced model): charged as the whole
            # reservation, the most the engine let the task spend at the prices it knew.
            spent = max(spent, reservation.usd)
        await asyncio.shield(self.budgets.settle(reservation, spent))

    async def release_unstarted(self, reservation: Reservation) -> None:
        """Releases a reservation taken with `reserve` whose task never started (a stream
        whose client left before its body began); a task that started settles itself."""
        if not reservation.started:
            await self._settle(reservation, None)

    def _settle_later(self, reservation: Reservation) -> None:
        if reservation.settled:
            return
        settling = asyncio.ensure_future(self._settle(reservation, None))
        self._settling.add(settling)
        settling.add_done_callback(self._settling.discard)

    def _provider(self, spec: TaskSpec) -> Provider:
        """The spec's provider, or a panel of providers for a vote across them (a member that
        is not configured answers its samples with its error: missing votes, not a failure)."""
        if not spec.panel:
            return self.registry.get(spec.provider)
        members = []
        for seat in spec.panel:
            try:
                member: Provider = self.registry.get(seat.provider)
            except agent_core.AgentError as error:
                member = Unavailable(seat.provider, error)
            members.append(PanelMember(member, seat.model, seat.samples))
        return Panel(members)

    async def aclose(self) -> None:
        """Waits for cancelled tasks to finish recording (at shutdown)."""
        if self._detached:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._detached, return_exceptions=True)
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)


_DONE: Any = object()  # the queue's end marker


def _providers_used(steps: list[agent_core.Step]) -> str | None:
    """`,a,b,`: every provider that answered a call (a vote across providers has several)."""
    names = sorted({step.provider for step in steps if step.provider})
    return "," + ",".join(names) + "," if names else None


def _spent(run: Run | None) -> tuple[list[agent_core.Step], agent_core.Usage]:
    """What a task that ended early had spent: its trace and tokens so far."""
    if run is None:
        return [], agent_core.Usage()
    return run.trace, run.usage
