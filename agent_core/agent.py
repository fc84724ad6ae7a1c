"""The asyncio driver: runs the engine's IO-free strategies against any provider.

The engine (Rust) says which completions it needs; this module makes them, each batch
concurrently, and reports the results back. Rust never waits on the network, so one process
can hold thousands of tasks in flight without threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
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

    async def run(self, task: Task) -> Answer:
        """Runs `task` to its answer. Raises the task's `AgentError` when it fails."""
        run = Run(task)
        while True:
            step = run.poll()
            if isinstance(step, Answer):
                return step
            if not step:  # only when a caller fed results out of band
                raise ProviderError("the engine is waiting for results that were never reported")
            await asyncio.gather(*(self._perform(run, group) for group in self._group(step)))

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

    async def _perform(self, run: Run, group: list[PendingCall], note: str | None = None) -> None:
        request: CompletionRequest = group[0].request
        started = time.perf_counter()
        try:
            if len(group) == 1:
                completions: list[Completion] = [await self.provider.complete(request)]
            else:
                completions = list(await self.provider.complete_many(request, len(group)))
            for completion in completions:
                if not isinstance(completion, Completion):
                    raise ProviderError(
                        f"provider {self.provider_name!r} returned "
                        f"{type(completion).__name__}, not Completion"
                    )
            if len(group) == 1 and len(completions) != 1:
                raise ProviderError(f"provider {self.provider_name!r} returned no completion")
        except AgentError as error:
            self._fail(run, group, error, started)
            return
        except Exception as error:  # a plugin's bug must not escape as a stack trace
            # Only the type is kept: a foreign exception's message may quote a secret.
            log.warning(
                "provider %r raised %s", self.provider_name, type(error).__name__, exc_info=False
            )
            self._fail(run, group, error, started)
            return
        latency_ms = (time.perf_counter() - started) * 1000
        served, missing = group[: len(completions)], group[len(completions) :]
        short = f"the call with n={len(group)} returned {len(completions)}" if missing else None
        for call, completion in zip(served, completions, strict=False):
            run.complete(call.id, completion, latency_ms, self.provider_name, note or short)
        if missing:
            # An upstream that ignores `n` (or answers fewer choices): each missing sample is
            # its own call, concurrently, so one failure costs one vote, not the batch. The
            # provider's own explanation, when it gave one, is the better note.
            said = completions[0].note if completions else None
            top_up = said if said and said.startswith("single call") else f"single call: {short}"
            await asyncio.gather(*(self._perform(run, [call], top_up) for call in missing))

    def _fail(self, run: Run, group: list[PendingCall], error: Exception, started: float) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        for call in group:
            run.fail(call.id, error, latency_ms, self.provider_name)
