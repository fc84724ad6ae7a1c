"""The provider contract as Python sees it: value types, errors and the Run state machine."""

from __future__ import annotations

import pytest

import agent_core
from agent_core import (
    AgentError,
    Answer,
    Completion,
    CompletionRequest,
    Message,
    Run,
    Task,
    Usage,
)

ERROR_CODES = {
    agent_core.InvalidRequestError: "invalid_request",
    agent_core.AuthenticationError: "authentication_failed",
    agent_core.RateLimitError: "rate_limited",
    agent_core.ProviderTimeoutError: "timeout",
    agent_core.UnavailableError: "unavailable",
    agent_core.BudgetExceededError: "budget_exceeded",
    agent_core.NotConfiguredError: "not_configured",
    agent_core.ProviderError: "provider_error",
}


@pytest.mark.parametrize(("error_class", "code"), ERROR_CODES.items())
def test_every_error_kind_has_a_stable_code_under_one_base(
    error_class: type[AgentError], code: str
) -> None:
    error = error_class("went wrong", retry_after=2.5)
    assert isinstance(error, AgentError)
    assert isinstance(error, Exception)
    assert error.code == code
    assert str(error) == "went wrong"
    assert error.message == "went wrong"
    assert error.retry_after == 2.5
    assert repr(error) == f'{error_class.__name__}("went wrong")'


def test_plugin_errors_can_subclass_ours_and_keep_the_code() -> None:
    class QuotaError(agent_core.RateLimitError):
        pass

    with pytest.raises(agent_core.RateLimitError) as caught:
        raise QuotaError("monthly quota", retry_after=60)
    assert caught.value.code == "rate_limited"


def test_value_types_are_frozen_and_compare_by_value() -> None:
    usage = Usage(prompt_tokens=3, completion_tokens=4)
    assert usage.total_tokens == 7
    assert usage == Usage(3, 4)
    completion = Completion("hi", "m", usage=usage)
    assert completion.finish_reason == "stop"
    assert completion.provider is None
    with pytest.raises(AttributeError):
        completion.text = "changed"  # type: ignore[misc]
    assert Message("user", "x") == Message("user", "x")


def test_bad_values_are_rejected_with_invalid_request() -> None:
    with pytest.raises(agent_core.InvalidRequestError, match="unknown message role"):
        Message("robot", "x")
    with pytest.raises(agent_core.InvalidRequestError, match="at least one message"):
        CompletionRequest([])
    with pytest.raises(agent_core.InvalidRequestError, match="temperature"):
        CompletionRequest([Message("user", "x")], temperature=3.0)


def test_extra_options_round_trip_as_fresh_dicts() -> None:
    request = CompletionRequest([Message("user", "x")], extra={"seed": 1, "tags": ["a"]})
    extra = request.extra
    extra["seed"] = 2
    assert request.extra == {"seed": 1, "tags": ["a"]}


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"strategy": "tree_of_thought"}, "direct, cot, self_consistency, refine"),
        ({"samples": 0}, "samples"),
        ({"rounds": 11}, "rounds"),
        ({"max_calls": 0}, "max_calls"),
        ({"strategy": "self_consistency", "temperature": 0.0}, "temperature above 0"),
    ],
)
def test_invalid_tasks_are_rejected_before_any_call(
    options: dict[str, object], needle: str
) -> None:
    with pytest.raises(agent_core.InvalidRequestError, match=needle):
        Task("q", **options)  # type: ignore[arg-type]


def test_empty_prompt_is_invalid() -> None:
    with pytest.raises(agent_core.InvalidRequestError, match="prompt must not be empty"):
        Task("   ")


def test_strategies_lists_the_engines_strategies() -> None:
    assert agent_core.strategies() == ["direct", "cot", "self_consistency", "refine"]


def test_run_can_be_driven_by_hand() -> None:
    run = Run(Task("Final answer: 5", strategy="self_consistency", samples=2))
    calls = run.poll()
    assert isinstance(calls, list)
    assert [c.purpose for c in calls] == ["sample 1", "sample 2"]
    assert run.poll() == []  # handed out once; results outstanding
    run.complete(calls[0].id, Completion("Final answer: 5", "m"), 12.0, "mine")
    run.fail(calls[1].id, agent_core.ProviderTimeoutError("slow"), 30.0, "mine")
    answer = run.poll()
    assert isinstance(answer, Answer)
    assert answer.text == "5"
    assert [s.error for s in answer.steps] == [None, "timeout"]
    assert answer.steps[0].provider == "mine"


def test_run_raises_the_tasks_error_when_it_fails() -> None:
    run = Run(Task("q"))
    calls = run.poll()
    assert isinstance(calls, list)
    run.fail(calls[0].id, agent_core.AuthenticationError("bad credentials"), 5.0)
    with pytest.raises(agent_core.AuthenticationError, match="bad credentials"):
        run.poll()


def test_foreign_exceptions_fed_to_a_run_keep_only_their_type() -> None:
    run = Run(Task("q"))
    calls = run.poll()
    assert isinstance(calls, list)
    run.fail(calls[0].id, KeyError("sk-secret"), 1.0)
    with pytest.raises(agent_core.ProviderError) as caught:
        run.poll()
    assert "KeyError" in str(caught.value)
    assert "sk-secret" not in str(caught.value)


def test_reporting_an_unknown_call_is_an_error() -> None:
    run = Run(Task("q"))
    run.poll()
    with pytest.raises(agent_core.InvalidRequestError, match="not awaiting"):
        run.complete(999, Completion("x", "m"), 1.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reasoning...\nFinal answer: 12", "12"),
        ("so \\boxed{7}", "7"),
        ("about 3,500 people", "3,500"),
        ("Paris", "Paris"),
    ],
)
def test_extract_answer_follows_the_documented_order(text: str, expected: str) -> None:
    assert agent_core.extract_answer(text) == expected


@pytest.mark.parametrize("written", ["1,000", "1000.0", "1e3", " 1000. "])
def test_normalize_answer_unifies_numbers(written: str) -> None:
    assert agent_core.normalize_answer(written) == "1000"
