"""The engine's limits, declared once in Rust, hold at the Python boundary: any integer, of any
size, becomes a Task or an InvalidRequestError naming the option and its range, never an
OverflowError or TypeError."""

from __future__ import annotations

from typing import Any

import pytest

import agent_core
from agent_core import LIMITS, CompletionRequest, InvalidRequestError, Message, Task

INT_OPTIONS = ["samples", "rounds", "max_tokens", "max_calls", "max_total_tokens"]
HOSTILE = [-(2**200), -(2**64), -1, 2**32, 2**63, 2**64, 2**64 + 1, 10**30, 2**200]


@pytest.mark.parametrize("option", INT_OPTIONS)
def test_task_turns_any_integer_into_a_task_or_an_invalid_request(option: str) -> None:
    limit = getattr(LIMITS, option)
    for value in [*HOSTILE, limit.minimum - 1, limit.maximum + 1]:
        with pytest.raises(InvalidRequestError) as caught:
            Task("q", **{option: value})
        assert caught.value.message.startswith(
            f"{option} must be between {limit.minimum} and {limit.maximum}, got "
        ), caught.value.message
    for value in (limit.minimum, limit.maximum):
        assert getattr(Task("q", **{option: value}), option) == value


@pytest.mark.parametrize("option", INT_OPTIONS)
@pytest.mark.parametrize("value", [True, "5", 5.0, [5], object()])
def test_task_refuses_non_integers_as_invalid_requests(option: str, value: Any) -> None:
    with pytest.raises(InvalidRequestError, match=rf"^{option} must be an integer"):
        Task("q", **{option: value})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), -0.5, 2.5])
def test_temperature_outside_its_range_is_an_invalid_request(value: float) -> None:
    with pytest.raises(InvalidRequestError, match=r"^temperature must be between 0 and 2"):
        Task("q", temperature=value)
    with pytest.raises(InvalidRequestError, match=r"^temperature must be between 0 and 2"):
        CompletionRequest([Message("user", "q")], temperature=value)


def test_completion_request_max_tokens_is_bounded_like_the_task() -> None:
    for value in HOSTILE:
        with pytest.raises(InvalidRequestError, match=r"^max_tokens must be between 1 and"):
            CompletionRequest([Message("user", "q")], max_tokens=value)
    request = CompletionRequest([Message("user", "q")], max_tokens=LIMITS.max_tokens.maximum)
    assert request.max_tokens == LIMITS.max_tokens.maximum


async def test_a_huge_token_budget_never_asks_a_call_for_more_than_its_limit() -> None:
    seen: list[int | None] = []

    class Recording(agent_core.Provider):
        name = "recording"

        async def complete(self, request: CompletionRequest) -> agent_core.Completion:
            seen.append(request.max_tokens)
            return agent_core.Completion("Final answer: 4", "m")

    task = Task("q", max_total_tokens=LIMITS.max_total_tokens.maximum)
    await agent_core.ReasoningAgent(Recording()).run(task)
    assert seen == [LIMITS.max_tokens.maximum]


def test_limits_are_exported_with_their_types() -> None:
    assert isinstance(LIMITS.samples, agent_core.IntRange)
    assert isinstance(LIMITS.temperature, agent_core.FloatRange)
    assert LIMITS.samples.contains(64) and not LIMITS.samples.contains(65)
    assert not LIMITS.samples.contains(True) and not LIMITS.samples.contains(2**100)
    assert not LIMITS.temperature.contains(float("nan"))
