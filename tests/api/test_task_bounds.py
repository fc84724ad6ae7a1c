"""Every numeric option of POST /task is bounded by the engine's own range (agent_core.LIMITS):
out of range is 422 `validation_error` naming the field and the range, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_core import LIMITS, FloatRange, IntRange
from api.routes.schemas import TaskRequest
from tests.api.conftest import headers, run_task

# The numeric fields of the request body, read from the model so a new one is covered too.
NUMERIC_FIELDS = {
    name: getattr(LIMITS, name)
    for name, field in TaskRequest.model_fields.items()
    if any(t in str(field.annotation) for t in ("int", "float")) and name != "trace"
}


def _range_text(limit: IntRange | FloatRange) -> str:
    if isinstance(limit, IntRange):
        return f"between {limit.minimum} and {limit.maximum}"
    return f"between {limit.minimum:g} and {limit.maximum:g}"


def test_every_numeric_field_has_an_engine_limit() -> None:
    assert set(NUMERIC_FIELDS) == {
        "samples",
        "rounds",
        "temperature",
        "max_tokens",
        "max_calls",
        "max_total_tokens",
        "max_cost_usd",
        "deadline_ms",
        "first_wave",
        "wave_size",
        "stop_confidence",
    }


def _out_of_range(limit: IntRange | FloatRange) -> list[Any]:
    if isinstance(limit, IntRange):
        return [limit.maximum + 1, limit.minimum - 1, 10**12, 2**64, 2**200, -(2**70)]
    return [limit.maximum + 0.001, limit.minimum - 0.001, 1e300, -1e300]


@pytest.mark.parametrize("field", sorted(NUMERIC_FIELDS))
def test_out_of_range_is_422_naming_field_and_range(client: TestClient, field: str) -> None:
    limit = NUMERIC_FIELDS[field]
    for value in _out_of_range(limit):
        response = run_task(client, **{field: value})
        assert response.status_code == 422, (field, value, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert f"body.{field}: must be {_range_text(limit)}" in error["message"], error
    # The bounds themselves are accepted by the model and by the engine.
    for value in (limit.minimum, limit.maximum):
        body: dict[str, Any] = {field: value}
        if field == "temperature" and value == 0:
            body["strategy"] = "direct"  # self_consistency refuses 0 on purpose
        response = run_task(client, provider="echo", **body)
        assert response.status_code == 200, (field, value, response.text)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e309", "-1e309"])
@pytest.mark.parametrize("field", sorted(NUMERIC_FIELDS))
def test_non_finite_numbers_are_422(client: TestClient, field: str, token: str) -> None:
    body = f'{{"prompt": "hi", "{field}": {token}}}'
    response = client.post(
        "/task", headers={**headers(), "Content-Type": "application/json"}, content=body
    )
    assert response.status_code in (400, 422), (field, token, response.text)
    assert response.json()["error"]["code"] in ("validation_error", "invalid_json")


@pytest.mark.parametrize("field", sorted(NUMERIC_FIELDS))
def test_numbers_must_be_json_numbers(client: TestClient, field: str) -> None:
    values: list[Any] = ["5", True, [1], {"n": 1}]
    for value in values:
        response = run_task(client, **{field: value})
        assert response.status_code == 422, (field, value, response.text)
        assert response.json()["error"]["code"] == "validation_error"


def test_openapi_carries_the_engines_ranges(client: TestClient) -> None:
    schema = client.get("/openapi.json", headers=headers()).json()
    properties = schema["components"]["schemas"]["TaskRequest"]["properties"]
    for field, limit in NUMERIC_FIELDS.items():
        (bounded,) = [s for s in properties[field]["anyOf"] if s.get("type") != "null"]
        assert (bounded["minimum"], bounded["maximum"]) == (limit.minimum, limit.maximum)
