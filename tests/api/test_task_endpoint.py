"""POST /task: answers, options, validation, and the history write before the response."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import KEY_A, MakeApp, headers, key_id, run_task


def test_task_answers_with_every_documented_field(client: TestClient) -> None:
    response = run_task(client)

    assert response.status_code == 200
    body = response.json()
    assert body["answer"] == "Hello, world!"
    assert body["provider"] == "echo"
    assert body["model"] == "echo-1"
    assert body["strategy"] == "direct"
    assert set(body) >= {
        "id",
        "answer",
        "provider",
        "model",
        "strategy",
        "confidence",
        "votes",
        "usage",
        "latency_ms",
        "created_at",
    }
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert len(body["id"]) == 32


def test_steps_are_returned_only_when_trace_is_requested(client: TestClient) -> None:
    plain = run_task(client).json()
    traced = run_task(client, trace=True).json()

    assert plain["steps"] is None
    assert [step["purpose"] for step in traced["steps"]] == ["answer"]
    assert traced["steps"][0]["provider"] == "echo"


def test_self_consistency_returns_votes_and_confidence(client: TestClient) -> None:
    body = run_task(client, prompt="What is 2+2?", strategy="self_consistency", samples=3).json()

    assert body["strategy"] == "self_consistency"
    assert body["votes"] == {"2": 3}
    assert body["confidence"] == 1.0
    assert body["calls"] == 3


def test_task_ids_sort_by_creation_time(client: TestClient) -> None:
    ids = [run_task(client).json()["id"] for _ in range(5)]

    assert ids == sorted(ids)


def test_unknown_provider_is_400_listing_the_providers(client: TestClient) -> None:
    response = run_task(client, provider="nope")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_provider"
    assert "echo" in error["message"] and "openai" in error["message"]


def test_unknown_strategy_is_400_listing_the_strategies(client: TestClient) -> None:
    response = run_task(client, strategy="telepathy")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_strategy"
    assert "self_consistency" in error["message"]


def test_missing_prompt_is_422(client: TestClient) -> None:
    response = client.post("/task", headers=headers(), json={"provider": "echo"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert "prompt" in response.json()["error"]["message"]


def test_blank_prompt_is_422(client: TestClient) -> None:
    response = run_task(client, prompt="   ")

    assert response.status_code == 422
    assert "prompt" in response.json()["error"]["message"]


def test_prompt_longer_than_max_prompt_chars_is_422(make_app: MakeApp) -> None:
    with make_app(max_prompt_chars=10) as client:
        response = run_task(client, prompt="x" * 11)

    assert response.status_code == 422
    assert "MAX_PROMPT_CHARS" in response.json()["error"]["message"]


def test_misspelt_option_is_422_not_ignored(client: TestClient) -> None:
    response = run_task(client, sample=3)

    assert response.status_code == 422
    assert "sample" in response.json()["error"]["message"]


def test_out_of_range_option_is_422(client: TestClient) -> None:
    response = run_task(client, strategy="self_consistency", samples=0)

    assert response.status_code == 422
    assert "samples" in response.json()["error"]["message"]


def test_acknowledged_task_is_already_in_the_history(client: TestClient) -> None:
    task = run_task(client, trace=True).json()

    record = client.get(f"/query/{task['id']}", headers=headers()).json()

    assert record["status"] == "succeeded"
    assert record["answer"] == task["answer"]
    assert record["key_id"] == key_id(KEY_A)
    assert record["steps"] == task["steps"]


def test_failed_task_is_recorded_with_its_error_code(make_app: MakeApp) -> None:
    with make_app() as client:
        # no OPENAI_API_KEY in the tests' environment (conftest removes it)
        response = run_task(client, provider="openai")
        failed = client.get("/query?status=failed", headers=headers()).json()["data"]

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_configured"
    assert len(failed) == 1
    assert failed[0]["provider"] == "openai"
    assert failed[0]["error"]["code"] == "not_configured"
    assert failed[0]["answer"] is None


def test_request_options_are_recorded_as_given(client: TestClient) -> None:
    task = run_task(client, strategy="self_consistency", samples=3, temperature=0.5).json()

    record = client.get(f"/query/{task['id']}", headers=headers()).json()

    assert record["params"] == {"samples": 3, "temperature": 0.5}


def test_budget_stops_the_strategy_early_and_says_so(client: TestClient) -> None:
    body = run_task(client, strategy="refine", rounds=2, max_calls=1).json()

    assert body["budget_exhausted"] is True
    assert body["calls"] == 1
