"""Progress events of a running task: every call as it starts and finishes (with the answer it
gives), the running vote after each sample, in the order things happen; and what a task spent
is on its `Run` even when it is cancelled."""

from __future__ import annotations

import asyncio

import pytest

import agent_core
from agent_core import (
    AgentEvent,
    CallFinished,
    CallStarted,
    Completion,
    CompletionRequest,
    EchoProvider,
    ReasoningAgent,
    Run,
    Task,
    VoteTally,
)


class Answers(agent_core.Provider):
    """Replies from a list, each after its own delay (so samples finish out of order)."""

    name = "answers"

    def __init__(self, replies: list[tuple[str, float]]) -> None:
        self.replies = list(replies)

    async def complete(self, request: CompletionRequest) -> Completion:
        text, delay = self.replies.pop(0)
        await asyncio.sleep(delay)
        return Completion(text, "m")


async def _events(provider: agent_core.Provider, task: Task) -> list[AgentEvent]:
    seen: list[AgentEvent] = []
    await ReasoningAgent(provider).run(task, on_event=seen.append)
    return seen


async def test_a_vote_reports_each_sample_and_the_running_tally() -> None:
    provider = Answers([("Final answer: 4", 0.03), ("Final answer: 5", 0.01), ("4", 0.02)])
    events = await _events(provider, Task("q", strategy="self_consistency", samples=3))
    started = [e for e in events if isinstance(e, CallStarted)]
    assert [(e.call, e.purpose, e.planned) for e in started] == [
        (0, "sample 1", 3),
        (1, "sample 2", 3),
        (2, "sample 3", 3),
    ]
    finished = [e for e in events if isinstance(e, CallFinished)]
    # In the order the samples answered, each with the answer it gives.
    assert [(e.step.index, e.step.candidate, e.done) for e in finished] == [
        (1, "5", 1),
        (2, "4", 2),
        (0, "4", 3),
    ]
    # Each start says when the call went out, as its trace step records it.
    assert [e.started_ms for e in started] == [
        e.step.started_ms for e in sorted(finished, key=lambda e: e.step.index)
    ]
    tallies = [e.votes for e in events if isinstance(e, VoteTally)]
    assert tallies == [{"5": 1}, {"4": 1, "5": 1}, {"4": 2, "5": 1}]
    # Every tally follows the finish it counts.
    kinds = [type(e).__name__ for e in events]
    assert kinds[3:] == ["CallFinished", "VoteTally"] * 3


async def test_refine_reports_its_calls_in_sequence_with_the_plan() -> None:
    events = await _events(EchoProvider(), Task("q", strategy="refine", rounds=2))
    finished = [e for e in events if isinstance(e, CallFinished)]
    assert [e.step.purpose for e in finished] == [
        "draft",
        "critique 1",
        "revise 1",
        "critique 2",
        "revise 2",
    ]
    assert {e.planned for e in finished} == {5}
    assert not any(isinstance(e, VoteTally) for e in events)


async def test_a_failed_call_is_reported_finished_with_its_error() -> None:
    class Down(agent_core.Provider):
        name = "down"

        async def complete(self, request: CompletionRequest) -> Completion:
            raise agent_core.UnavailableError("503")

    seen: list[AgentEvent] = []
    with pytest.raises(agent_core.UnavailableError):
        await ReasoningAgent(Down()).run(Task("q"), on_event=seen.append)
    (finished,) = [e for e in seen if isinstance(e, CallFinished)]
    assert finished.step.error == "unavailable"


async def test_without_an_observer_no_events_are_built() -> None:
    answer = await ReasoningAgent(EchoProvider()).run(Task("q", strategy="self_consistency"))
    assert answer.votes == {"q": 5}


async def test_a_cancelled_run_keeps_what_it_spent() -> None:
    provider = Answers([("Final answer: 1", 0.0), ("Final answer: 1", 5.0)])
    run = Run(Task("q", strategy="self_consistency", samples=2))
    driving = asyncio.ensure_future(ReasoningAgent(provider).drive(run))
    await asyncio.sleep(0.1)
    driving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await driving
    assert len(run.trace) == 2
    assert run.trace[0].candidate == "1" and run.trace[1].output is None


async def test_the_final_call_streams_its_text_as_deltas() -> None:
    from agent_core import AnswerDelta

    events = await _events(EchoProvider(), Task("the answer is here", strategy="direct"))
    deltas = [e.text for e in events if isinstance(e, AnswerDelta)]
    assert len(deltas) == 4 and "".join(deltas) == "the answer is here"
    # The deltas come between the call's start and its finish.
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "CallStarted" and kinds[-1] == "CallFinished"


async def test_samples_of_a_vote_are_not_streamed() -> None:
    from agent_core import AnswerDelta

    events = await _events(EchoProvider(), Task("Final answer: 3", strategy="self_consistency"))
    assert not any(isinstance(e, AnswerDelta) for e in events)
