"""The asyncio driver: runs the engine's IO-free strategies against any provider.

The engine (Rust) says which completions it needs; this module makes them, each batch
concurrently, and reports the results back. Rust never waits on the network, so one process
can hold thousands of tasks in flight without threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from agent_core._agent_core import (
    AgentError,
    Answer,
    Completion,
    CompletionRequest,
    PendingCall,
    Provider,
    ProviderError,
    Run,
    Task,
)
from agent_core.events import AgentEvent, AnswerDelta, CallFinished, CallStarted, VoteTally

__all__ = ["ReasoningAgent"]

log = logging.getLogger("agent_core")


class ReasoningAgent:
    """Runs reasoning tasks against one provider.

    >>> agent = ReasoningAgent(EchoProvider())
    >>> answer = await agent.ask("What is 2 + 2?", strategy="self_consistency", samples=5)
    """

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    @property
    def provider_name(self) -> str:
        return str(self.provider.name)

    async def ask(self, prompt: str, **options: Any) -> Answer:
        """Builds a `Task` from `prompt` and keyword options, and runs it."""
        return await self.run(Task(prompt, **options))

    async def run(self, task: Task, *, on_event: Observer | None = None) -> Answer:
        """Runs `task` to its answer. Raises the task's `AgentError` when it fails."""
        return await self.drive(Run(task), on_event=on_event)

    async def drive(self, run: Run, *, on_event: Observer | None = None) -> Answer:
        """Drives `run` to its answer; the caller keeps `run`, so what a task spent is known
        even when it is cancelled (`run.trace`, `run.usage`).

        With `on_event`, progress is reported as it happens (`agent_core.events`) and the
        strategy's final call is streamed from the provider (`AnswerDelta`s).

        Each call's trace step records when it started (`started_ms`), in milliseconds from
        this call to `drive`, on the same clock as its `latency_ms`.
        """
        origin = time.perf_counter()
        progress = _Progress(run, on_event, self.provider_name) if on_event else None
        deadline_ms = run.task.deadline_ms
        if deadline_ms is None:
            return await self._loop(run, progress, origin)
        try:
            # Past the deadline the calls still out are cancelled (their connections closed)
            # and the engine ends the task with its best answer so far.
            async with asyncio.timeout(deadline_ms / 1000):
                return await self._loop(run, progress, origin)
        except TimeoutError:
            return run.expire()

    async def _loop(self, run: Run, progress: _Progress | None, origin: float) -> Answer:
        while True:
            step = run.poll()
            if isinstance(step, Answer):
                return step
            if not step:  # only when a caller fed results out of band
                raise ProviderError("the engine is waiting for results that were never reported")
            groups = self._group(step)
            if len(groups) == 1:
                # One call (every direct task, every refine step) is awaited in place: gather
                # would wrap it in a task of its own and schedule it, for nothing to overlap.
                await self._perform(run, groups[0], progress, origin)
            else:
                await asyncio.gather(
                    *(self._perform(run, group, progress, origin) for group in groups)
                )

    def _group(self, calls: Sequence[PendingCall]) -> list[list[PendingCall]]:
        """Identical sample requests go out as one call when the provider returns several."""
        if not self.provider.capabilities.multiple_samples:
            return [[call] for call in calls]
        groups: list[list[PendingCall]] = []
        for call in calls:
            for group in groups:
                if group[0].request == call.request:
                    group.append(call)
                    break
            else:
                groups.append([call])
        return groups

    async def _perform(
        self,
        run: Run,
        group: list[PendingCall],
        progress: _Progress | None,
        origin: float,
        note: str | None = None,
    ) -> None:
        """Makes one call (or one call for a group of identical samples) and reports it.
        `origin`: the drive's start on the `perf_counter` clock, from which starts are told."""
        request: CompletionRequest = group[0].request
        started = time.perf_counter()
        started_ms = (started - origin) * 1000
        if progress is not None:
            progress.started(group, started_ms)
        try:
            if len(group) > 1:
                completions = list(await self.provider.complete_many(request, len(group)))
            elif progress is not None and group[0].is_final:
                completions = [await self._stream(request, group[0].id, progress)]
            else:
                completions = [await self.provider.complete(request)]
            for completion in completions:
                if not isinstance(completion, Completion):
                    raise ProviderError(
                        f"provider {self.provider_name!r} returned "
                        f"{type(completion).__name__}, not Completion"
                    )
            if len(group) == 1 and len(completions) != 1:
                raise ProviderError(f"provider {self.provider_name!r} returned no completion")
        except AgentError as error:
            self._fail(run, group, error, started, origin, progress)
            return
        except Exception as error:  # a plugin's bug must not escape as a stack trace
            # Only the type is kept: a foreign exception's message may quote a secret.
            log.warning(
                "provider %r raised %s", self.provider_name, type(error).__name__, exc_info=False
            )
            self._fail(run, group, error, started, origin, progress)
            return
        latency_ms = (time.perf_counter() - started) * 1000
        served, missing = group[: len(completions)], group[len(completions) :]
        short = f"the call with n={len(group)} returned {len(completions)}" if missing else None
        for call, completion in zip(served, completions, strict=False):
            run.complete(
                call.id, completion, latency_ms, self.provider_name, note or short, started_ms
            )
            if progress is not None:
                progress.finished(call.id)
        if missing:
            # An upstream that ignores `n` (or answers fewer choices): each missing sample is
            # its own call, concurrently, so one failure costs one vote, not the batch. The
            # provider's own explanation, when it gave one, is the better note.
            said = completions[0].note if completions else None
            top_up = said if said and said.startswith("single call") else f"single call: {short}"
            await asyncio.gather(
                *(self._perform(run, [call], progress, origin, top_up) for call in missing)
            )

    async def _stream(
        self, request: CompletionRequest, call_id: int, progress: _Progress
    ) -> Completion:
        """The final call, streamed: its text deltas are reported as they arrive (a provider
        that does not stream natively gives its whole reply as one delta)."""
        stream = self.provider.stream(request)
        final: Completion | None = None
        try:
            async for item in stream:
                if isinstance(item, Completion):
                    final = item
                elif item:
                    progress.delta(call_id, str(item))
        finally:
            # Closes the upstream response however the loop ends (a cancelled task included).
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        if final is None:
            raise ProviderError(f"provider {self.provider_name!r} ended its stream without a reply")
        return final

    def _fail(
        self,
        run: Run,
        group: list[PendingCall],
        error: Exception,
        started: float,
        origin: float,
        progress: _Progress | None,
    ) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        started_ms = (started - origin) * 1000
        for call in group:
            run.fail(call.id, error, latency_ms, self.provider_name, started_ms)
            if progress is not None:
                progress.finished(call.id)


Observer = Callable[[AgentEvent], None]
"""Receives a running task's progress events, synchronously, in order."""


class _Progress:
    """Turns one run's calls into progress events (built only when someone listens)."""

    __slots__ = ("done", "emit", "provider", "run")

    def __init__(self, run: Run, emit: Observer, provider: str) -> None:
        self.run = run
        self.emit = emit
        self.provider = provider
        self.done = 0

    def started(self, calls: list[PendingCall], started_ms: float) -> None:
        planned = self.run.planned_calls
        for call in calls:
            self.emit(
                CallStarted(
                    call.id, call.purpose, self.provider, call.request.model, planned, started_ms
                )
            )

    def finished(self, call_id: int) -> None:
        self.done += 1
        planned = self.run.planned_calls
        self.emit(CallFinished(self.run.step(call_id), self.done, planned))
        tally = self.run.tally()
        if tally is not None:
            self.emit(VoteTally(tally, sum(tally.values()), planned))

    def delta(self, call_id: int, text: str) -> None:
        self.emit(AnswerDelta(call_id, text))
