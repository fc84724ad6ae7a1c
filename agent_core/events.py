"""What a running task reports while it runs: the driver's progress events.

`ReasoningAgent.drive(run, on_event=...)` calls `on_event` with these, synchronously, in the
order things happen; without `on_event` nothing is built. The service turns them into
Server-Sent Events, the CLI into a live progress line.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_core._agent_core import Step

__all__ = ["AgentEvent", "AnswerDelta", "CallFinished", "CallStarted", "VoteTally"]


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A provider call was sent."""

    call: int  # the call's id, which is its index in the trace
    purpose: str  # `answer`, `sample 3`, `draft`, `critique 1`, ...
    provider: str
    model: str | None  # None: the provider's default model
    planned: int  # calls the task plans in all, as known now
    # ms from the start of the drive (the trace step's `started_ms`); None: not timed
    started_ms: float | None = None


@dataclass(frozen=True, slots=True)
class CallFinished:
    """A provider call answered or failed: its trace step (latency, tokens, the answer it
    gives in `candidate`, the error, the note)."""

    step: Step
    done: int  # calls finished so far
    planned: int


@dataclass(frozen=True, slots=True)
class VoteTally:
    """The running vote after a sample of a voting strategy finished."""

    votes: dict[str, int]  # normalised answer -> votes so far
    cast: int  # votes counted so far
    planned: int  # samples planned


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """Text of the final call's reply as the upstream streams it."""

    call: int
    text: str


AgentEvent = CallStarted | CallFinished | VoteTally | AnswerDelta
