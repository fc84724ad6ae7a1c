"""The asyncio driver runs every strategy against a Python `Provider` subclass."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator, Sequence

import pytest

import agent_core
from agent_core import (
    Answer,
    Capabilities,
    Completion,
    CompletionRequest,
    Provider,
    ReasoningAgent,
    Task,
    Usage,
)


class ScriptedProvider(Provider):
    """Replies from a script and records what it was asked and how many calls overlapped."""

    name = "scripted"

    def __init__(self, replies: Sequence[str | Exception], delay: float = 0.0) -> None:
        self.replies: Iterator[str | Exception] = iter(replies)
        self.delay = delay
        self.requests: list[CompletionRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            reply = next(self.replies)
            if isinstance(reply, Exception):
                raise reply
            return Completion(reply, "scripted-1", usage=Usage(3, 2))
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("strategy", agent_core.strategies())
async def test_every_strategy_returns_an_answer_with_its_trace(strategy: str) -> None:
    provider = ScriptedProvider(["Final answer: 42"] * 5 + ["NO ISSUES"])
    answer = await ReasoningAgent(provider).ask("What is 6 * 7?", strategy=strategy)
    assert isinstance(answer, Answer)
    assert answer.strategy == strategy
    assert answer.text.endswith("42")
    assert answer.provider == "scripted"
    assert answer.model == "scripted-1"
    assert len(answer.steps) == answer.calls >= 1
    assert answer.usage.total_tokens == 5 * answer.calls
    for step in answer.steps:
        assert step.provider == "scripted"
        assert step.latency_ms >= 0
        assert step.output is not None


async def test_self_consistency_sends_its_samples_concurrently() -> None:
    provider = ScriptedProvider(["Final answer: 1"] * 8, delay=0.01)
    answer = await ReasoningAgent(provider).ask("q", strategy="self_consistency", samples=8)
    assert provider.max_in_flight == 8
    assert answer.confidence == 1.0
    assert answer.votes == {"1": 8}


async def test_self_consistency_reports_votes_and_confidence() -> None:
    replies = ["Final answer: Paris", "Final answer: paris.", "Final answer: Lyon"]
    provider = ScriptedProvider(list(replies))
    answer = await ReasoningAgent(provider).ask("Capital?", strategy="self_consistency", samples=3)
    assert answer.text == "Paris"
    assert answer.votes == {"paris": 2, "lyon": 1}
    assert answer.confidence == pytest.approx(2 / 3)
    assert [s.candidate for s in answer.steps] == ["Paris", "paris.", "Lyon"]


async def test_a_failed_sample_is_a_missing_vote_not_a_failed_task() -> None:
    replies: list[str | Exception] = [
        "Final answer: 7",
        agent_core.UnavailableError("upstream 503"),
        "Final answer: 7",
    ]
    answer = await ReasoningAgent(ScriptedProvider(replies)).ask(
        "q", strategy="self_consistency", samples=3
    )
    assert answer.text == "7"
    assert answer.calls == 3
    assert answer.steps[1].error == "unavailable"
    assert answer.steps[1].error_message == "upstream 503"


async def test_the_task_fails_with_the_providers_error_kind() -> None:
    provider = ScriptedProvider([agent_core.RateLimitError("slow down", retry_after=1.5)])
    with pytest.raises(agent_core.RateLimitError) as caught:
        await ReasoningAgent(provider).ask("q")
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after == 1.5


async def test_a_plugin_bug_becomes_a_provider_error_without_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-live-should-never-leak"
    provider = ScriptedProvider([ValueError(f"bad key {secret}")])
    with caplog.at_level(logging.DEBUG), pytest.raises(agent_core.ProviderError) as caught:
        await ReasoningAgent(provider).ask("q")
    assert caught.value.code == "provider_error"
    assert "ValueError" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in caplog.text


async def test_a_provider_returning_the_wrong_type_is_a_provider_error() -> None:
    class Sloppy(Provider):
        name = "sloppy"

        async def complete(self, request: CompletionRequest) -> Completion:
            return "just a string"  # type: ignore[return-value]

    with pytest.raises(agent_core.ProviderError, match="not Completion"):
        await ReasoningAgent(Sloppy()).ask("q")


async def test_a_provider_that_forgot_complete_gets_a_clear_error() -> None:
    class Forgetful(Provider):
        name = "forgetful"

    with pytest.raises(agent_core.ProviderError, match="NotImplementedError"):
        await ReasoningAgent(Forgetful()).ask("q")


async def test_multiple_samples_are_asked_for_in_one_call_when_the_provider_can() -> None:
    class Batched(Provider):
        name = "batched"
        capabilities = Capabilities(multiple_samples=True)

        def __init__(self) -> None:
            self.batches: list[int] = []

        async def complete(self, request: CompletionRequest) -> Completion:
            raise AssertionError("complete_many should be used")

        async def complete_many(self, request: CompletionRequest, n: int) -> list[Completion]:
            self.batches.append(n)
            return [Completion(f"Final answer: {i % 2}", "b-1") for i in range(n)]

    provider = Batched()
    answer = await ReasoningAgent(provider).ask("q", strategy="self_consistency", samples=5)
    assert provider.batches == [5]
    assert answer.votes == {"0": 3, "1": 2}


async def test_default_complete_many_makes_concurrent_calls() -> None:
    provider = ScriptedProvider(["a", "b", "c"], delay=0.01)
    request = CompletionRequest([agent_core.Message("user", "hi")])
    completions = await provider.complete_many(request, 3)
    assert [c.text for c in completions] == ["a", "b", "c"]
    assert provider.max_in_flight == 3


async def test_budget_cuts_samples_and_marks_the_answer() -> None:
    provider = ScriptedProvider(["Final answer: 4"] * 3)
    answer = await ReasoningAgent(provider).run(
        Task("q", strategy="self_consistency", samples=5, max_calls=3)
    )
    assert answer.calls == 3
    assert answer.budget_exhausted is True
    assert len(provider.requests) == 3


async def test_task_options_reach_the_provider_request() -> None:
    provider = ScriptedProvider(["ok"])
    await ReasoningAgent(provider).ask(
        "hello",
        system="be brief",
        model="m-large",
        temperature=0.3,
        max_tokens=20,
        stop=["\n\n"],
        extra={"seed": 7, "top_p": 0.9},
    )
    request = provider.requests[0]
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.prompt == "hello"
    assert (request.model, request.temperature, request.max_tokens) == ("m-large", 0.3, 20)
    assert request.stop == ["\n\n"]
    assert request.extra == {"seed": 7, "top_p": 0.9}


async def test_echo_provider_answers_offline_with_latency() -> None:
    echo = agent_core.EchoProvider(latency=0.01)
    answer = await ReasoningAgent(echo).ask("Hello, world!")
    assert answer.text == "Hello, world!"
    assert answer.provider == "echo"
    assert answer.model == "echo-1"
    assert answer.steps[0].latency_ms >= 10


async def test_answer_serialises_to_plain_data() -> None:
    answer = await ReasoningAgent(agent_core.EchoProvider()).ask(
        "Final answer: 3", strategy="self_consistency", samples=2
    )
    data = answer.to_dict()
    assert data["text"] == "3"
    assert data["votes"] == {"3": 2}
    assert data["usage"]["total_tokens"] == answer.usage.total_tokens
    assert [s["purpose"] for s in data["steps"]] == ["sample 1", "sample 2"]
    assert "steps" not in answer.to_dict(trace=False)


async def test_a_failed_task_reports_the_calls_and_tokens_it_spent() -> None:
    provider = ScriptedProvider(
        ["a draft", "too vague", agent_core.UnavailableError("upstream 503 on revise")]
    )
    with pytest.raises(agent_core.UnavailableError) as caught:
        await ReasoningAgent(provider).ask("q", strategy="refine", rounds=1)
    error = caught.value
    assert error.calls == 3
    assert [s.purpose for s in error.steps] == ["draft", "critique 1", "revise 1"]
    assert [s.error for s in error.steps] == [None, None, "unavailable"]
    assert error.usage.total_tokens == 10  # two answered calls of 5 tokens each


async def test_a_providers_own_error_carries_no_trace() -> None:
    error = agent_core.RateLimitError("slow down")
    assert (error.steps, error.calls, error.usage.total_tokens) == ([], 0, 0)


async def test_each_step_records_when_its_call_started() -> None:
    # refine's calls go one after another: each starts once the one before has ended.
    provider = ScriptedProvider(["Final answer: 1", "Wrong.", "Final answer: 2"], delay=0.02)
    answer = await ReasoningAgent(provider).ask("q", strategy="refine", rounds=1)
    assert [s.purpose for s in answer.steps] == ["draft", "critique 1", "revise 1"]
    starts = [s.started_ms for s in answer.steps]
    assert all(isinstance(start, float) and start >= 0 for start in starts), starts
    for before, after in itertools.pairwise(answer.steps):
        assert after.started_ms is not None and before.started_ms is not None
        assert after.started_ms >= before.started_ms + before.latency_ms - 0.01, starts
    assert [s["started_ms"] for s in answer.to_dict()["steps"]] == starts


async def test_a_votes_samples_start_together() -> None:
    # The samples go out at once: all start before the first of them could have ended.
    provider = ScriptedProvider(["Final answer: 1"] * 4, delay=0.05)
    answer = await ReasoningAgent(provider).ask("q", strategy="self_consistency", samples=4)
    starts = [s.started_ms for s in answer.steps]
    assert all(start is not None and start >= 0 for start in starts), starts
    first_end = min(s.started_ms + s.latency_ms for s in answer.steps if s.started_ms is not None)
    assert max(start for start in starts if start is not None) < first_end, starts
    assert max(s.latency_ms for s in answer.steps) >= 50


async def test_a_failed_call_records_its_start_too() -> None:
    provider = ScriptedProvider(
        ["Final answer: 1", agent_core.UnavailableError("down")], delay=0.01
    )
    answer = await ReasoningAgent(provider).ask("q", strategy="self_consistency", samples=2)
    failed = [s for s in answer.steps if s.error is not None]
    assert len(failed) == 1
    assert failed[0].started_ms is not None and failed[0].started_ms >= 0


def test_a_run_reported_without_a_start_leaves_it_unknown() -> None:
    run = agent_core.Run(Task("q", strategy="self_consistency", samples=2))
    calls = run.poll()
    assert isinstance(calls, list)
    run.complete(calls[0].id, Completion("Final answer: 1", "m"), 5.0, started_ms=1.5)
    run.fail(calls[1].id, agent_core.UnavailableError("down"), 2.0, started_ms=2.5)
    assert [s.started_ms for s in run.trace] == [1.5, 2.5]
    other = agent_core.Run(Task("q"))
    pending = other.poll()
    assert isinstance(pending, list) and len(pending) == 1
    other.complete(pending[0].id, Completion("x", "m"), 5.0)
    assert other.trace[0].started_ms is None
    assert other.trace[0].to_dict()["started_ms"] is None
