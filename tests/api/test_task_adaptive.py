"""Adaptive self-consistency through POST /task: `early_stop` draws samples in waves until
the vote is decided, and the answer says how many were drawn, in how many waves, why sampling
stopped and the probability that the winner stands."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import run_task


def test_early_stop_draws_fewer_samples_and_says_why(client: TestClient) -> None:
    response = run_task(
        client,
        prompt="Final answer: 9",
        provider="echo",
        strategy="self_consistency",
        samples=16,
        early_stop=True,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    sampling = body["sampling"]
    assert sampling["stopped"] == "confident" and sampling["maximum"] == 16
    assert sampling["drawn"] == body["calls"] == body["votes"]["9"] < 16
    assert sampling["posterior"] >= 0.94 and sampling["waves"] >= 1
    stored = client.get(f"/query/{body['id']}", headers={"X-API-Key": "test-key-alpha-0001"})
    assert stored.json()["sampling"] == sampling  # the record says it too


def test_without_early_stop_every_sample_is_drawn_at_once(client: TestClient) -> None:
    body = run_task(
        client, prompt="Final answer: 9", provider="echo", strategy="self_consistency", samples=6
    ).json()
    assert body["sampling"] == {
        "drawn": 6,
        "maximum": 6,
        "waves": 1,
        "stopped": "max_samples",
        "posterior": 1.0,
    }


def test_strategies_that_do_not_vote_have_no_sampling(client: TestClient) -> None:
    body = run_task(client, provider="echo", strategy="cot").json()
    assert body["sampling"] is None


def test_wave_options_out_of_range_are_422(client: TestClient) -> None:
    cases: list[tuple[str, Any]] = [("first_wave", 0), ("wave_size", 65), ("stop_confidence", 0.4)]
    for field, value in cases:
        response = run_task(client, strategy="self_consistency", **{field: value})
        assert response.status_code == 422, (field, response.text)
        assert f"body.{field}: must be between" in response.json()["error"]["message"]
