"""Property tests (hypothesis) of the task request model and of the engine's limits.

- Any JSON object `TaskRequest` accepts builds an `agent_core.Task` the way `POST /task` builds
  it (the task pipeline's `TaskSpec.resolve`), raising nothing but an `AgentError`; through
  HTTP, the service answers it without a 5xx, and answers whatever it refuses with 422
  validation_error.
- The engine takes every integer of its ranges (`agent_core.LIMITS`) and refuses anything
  beyond them with an `AgentError` (never an `OverflowError`); a run never makes more calls
  than `max_calls`, and an answer that spent more tokens than `max_total_tokens` says so
  (`budget_exhausted`).
- Integers beyond the engine's ranges are refused by the request model (422).

Fixed seeds (`derandomize`) and no example database: every run draws the same examples.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import agent_core
from api.routes.schemas import TaskRequest
from api.tasks import TaskRejected, TaskSpec
from providers import ProviderRegistry, load_registry
from tests.api.conftest import KEY_A
from tests.api.hostile_support import (
    ENGINE_INT_LIMITS,
    error_envelope,
    hostile_app,
    mock_openai_providers,
)

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def examples(count: int) -> settings:
    return settings(PROPERTY, max_examples=count)


# --- strategies -------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
names = st.sampled_from(["echo", "openai", "nope", "", "ECHO", "direct", "cot"]) | st.text(
    max_size=70
)


def engine_ints(name: str) -> st.SearchStrategy[int]:
    """Integers an option may hold within the engine's range, edges included."""
    low, top = ENGINE_INT_LIMITS[name].minimum, ENGINE_INT_LIMITS[name].maximum
    return st.integers(min_value=low, max_value=top) | st.sampled_from([low, top - 1, top])


def task_bodies(*, in_engine_range: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects shaped like task requests: well typed (so that many are accepted), or well
    typed but for one field holding any JSON at all (out-of-range numbers, NaN, the
    infinities, wrong types), or with a field the model does not know."""
    ints = {name: engine_ints(name) for name in ENGINE_INT_LIMITS}
    if not in_engine_range:
        ints = {name: st.integers() for name in ENGINE_INT_LIMITS}
    fields: dict[str, st.SearchStrategy[Any]] = {
        "system": st.none() | st.text(max_size=30),
        "provider": st.none() | names,
        "model": st.none() | st.text(max_size=210),
        "strategy": st.none() | st.sampled_from(agent_core.strategies()) | names,
        "temperature": st.none()
        | st.floats(min_value=0, max_value=2)
        | st.sampled_from([0.0, 2.0]),
        "trace": st.booleans(),
        **{name: st.none() | strategy for name, strategy in ints.items()},
    }
    typed = st.fixed_dictionaries({"prompt": st.text(min_size=1, max_size=40)}, optional=fields)
    one_field_anything = st.builds(
        lambda body, name, value: {**body, name: value},
        typed,
        st.sampled_from(["prompt", *fields]),
        json_values,
    )
    unknown_field = st.builds(
        lambda body, name, value: {**body, name: value},
        typed,
        st.sampled_from(["promt", "n", "stream", "Prompt"]),
        json_values,
    )
    return typed | typed | one_field_anything | unknown_field


def accepted(body: dict[str, Any]) -> TaskRequest | None:
    """The model as the route gets it: FastAPI validates what `json.loads` made of the body."""
    try:
        return TaskRequest.model_validate(json.loads(json.dumps(body)))
    except ValidationError:
        return None


def beyond_range_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Valid task bodies but for one integer beyond the engine's range."""
    return st.sampled_from(sorted(ENGINE_INT_LIMITS)).flatmap(
        lambda name: st.builds(
            lambda value, strategy: {"prompt": "hello", "strategy": strategy, name: value},
            st.integers(min_value=ENGINE_INT_LIMITS[name].maximum + 1, max_value=10**40)
            | st.sampled_from([ENGINE_INT_LIMITS[name].maximum + 1, 2**64, 10**24, -1]),
            st.sampled_from(agent_core.strategies()),
        )
    )


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    directory: Path = tmp_path_factory.mktemp("properties")
    with (
        hostile_app(directory) as (app, _),
        TestClient(app, raise_server_exceptions=False) as test_client,
    ):
        yield test_client


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderRegistry]:
    """The registry the route would use (its settings give the task options' defaults)."""
    directory = tmp_path_factory.mktemp("properties-registry")
    loaded = load_registry(mock_openai_providers(directory, "http://127.0.0.1:9/v1"))
    yield loaded
    asyncio.run(loaded.aclose())


# --- the request model ------------------------------------------------------------------------


@examples(400)
@given(body=task_bodies())
def test_any_accepted_request_builds_a_task_or_an_agent_error(
    body: dict[str, Any], registry: ProviderRegistry
) -> None:
    request = accepted(body)
    if request is None:
        return
    try:
        spec = TaskSpec.resolve(
            registry,
            prompt=request.prompt,
            system=request.system,
            provider=request.provider,
            model=request.model,
            strategy=request.strategy,
            options=request,
        )
    except TaskRejected as refused:  # an unknown name: 400 before any Task exists
        assert refused.code in {"unknown_strategy", "unknown_provider"}
        return
    strategy = spec.strategy
    try:
        task = agent_core.Task(
            spec.prompt,
            strategy=spec.strategy,
            system=spec.system,
            model=spec.model,
            **spec.options,
        )
    except agent_core.AgentError as refused:
        event(f"engine refused: {refused.code}")
        return
    event("task built")
    assert task.prompt == request.prompt
    assert task.strategy == strategy


# Through HTTP, what each accepted request may be answered with (docs/api.md): the answer, a
# refusal of the provider, strategy or options, a prompt over MAX_PROMPT_CHARS, a budget spent
# before any answer, or a provider that exists but is not configured here.
ANSWERS_TO_ACCEPTED: dict[int, set[str | None]] = {
    200: {None},
    400: {"unknown_provider", "unknown_strategy", "invalid_request"},
    422: {"validation_error", "budget_exceeded"},
    503: {"not_configured"},
}


@examples(150)
@given(body=task_bodies())
def test_any_request_is_answered_without_a_server_error(
    body: dict[str, Any], client: TestClient
) -> None:
    response = client.post(
        "/task",
        headers={"X-API-Key": KEY_A, "Content-Type": "application/json"},
        content=json.dumps(body),  # NaN and the infinities as JSON tokens
    )

    assert response.status_code < 500, response.text
    event(f"{'accepted' if accepted(body) else 'refused'}: {response.status_code}")
    code = None if response.status_code == 200 else error_envelope(response.json())["code"]
    if accepted(body) is None:
        assert (response.status_code, code) == (422, "validation_error")
    else:
        assert code in ANSWERS_TO_ACCEPTED.get(response.status_code, set()), response.text


@examples(20)
@given(body=beyond_range_bodies())
def test_integers_beyond_the_engine_range_are_refused_by_the_request_model(
    body: dict[str, Any], client: TestClient
) -> None:
    response = client.post("/task", headers={"X-API-Key": KEY_A}, json=body)

    assert response.status_code == 422, response.text
    assert error_envelope(response.json())["code"] == "validation_error"


# --- the engine's limits ----------------------------------------------------------------------


@examples(100)
@given(
    name=st.sampled_from(sorted(ENGINE_INT_LIMITS)),
    offset=st.integers(min_value=0, max_value=2**16),
    strategy=st.sampled_from(agent_core.strategies()),
)
def test_the_engine_takes_every_integer_of_its_range_and_refuses_beyond(
    name: str, offset: int, strategy: str
) -> None:
    limit = ENGINE_INT_LIMITS[name]
    inside = max(limit.minimum, limit.maximum - offset)

    within: dict[str, Any] = {name: inside}
    beyond: dict[str, Any] = {name: limit.maximum + 1 + offset}
    below: dict[str, Any] = {name: limit.minimum - 1 - offset}

    task = agent_core.Task("hello", strategy=strategy, temperature=0.7, **within)
    assert getattr(task, name) == inside  # never truncated nor wrapped
    for outside in (beyond, below):
        with pytest.raises(agent_core.InvalidRequestError):  # never an OverflowError
            agent_core.Task("hello", strategy=strategy, temperature=0.7, **outside)


@examples(80)
@given(
    strategy=st.sampled_from(agent_core.strategies()),
    max_calls=st.none() | st.integers(min_value=1, max_value=12),
    max_total_tokens=st.none() | st.integers(min_value=1, max_value=200),
    max_tokens=st.none() | st.integers(min_value=1, max_value=50),
    samples=st.integers(min_value=1, max_value=8),
    rounds=st.integers(min_value=0, max_value=3),
    prompt=st.text(min_size=1, max_size=60).filter(str.strip),
)
def test_a_run_stays_within_its_call_budget_and_flags_spent_tokens(
    strategy: str,
    max_calls: int | None,
    max_total_tokens: int | None,
    max_tokens: int | None,
    samples: int,
    rounds: int,
    prompt: str,
) -> None:
    task = agent_core.Task(
        prompt,
        strategy=strategy,
        temperature=0.7,
        samples=samples,
        rounds=rounds,
        max_calls=max_calls,
        max_total_tokens=max_total_tokens,
        max_tokens=max_tokens,
    )
    try:
        answer = asyncio.run(agent_core.ReasoningAgent(agent_core.EchoProvider()).run(task))
    except agent_core.BudgetExceededError as spent:
        assert max_calls is not None or max_total_tokens is not None
        assert max_calls is None or len(spent.steps) <= max_calls
        return

    assert max_calls is None or answer.calls <= max_calls
    if max_total_tokens is not None and answer.usage.total_tokens > max_total_tokens:
        assert answer.budget_exhausted
    if answer.confidence is not None:
        assert 0 < answer.confidence <= 1 and not math.isnan(answer.confidence)
