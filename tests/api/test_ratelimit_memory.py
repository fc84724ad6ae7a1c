"""Per-key rate limits (in-memory storage): 429 with headers, one budget across endpoints."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.config import SettingsInvalid, load_service_settings
from tests.api.conftest import KEY_A, KEY_B, MakeApp, headers, run_task

LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def test_61st_request_in_a_minute_gets_429_with_headers_and_retry_after(
    client: TestClient,
) -> None:
    statuses = [run_task(client).status_code for _ in range(60)]
    refused = run_task(client)

    assert statuses == [200] * 60
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-limit"] == "60"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(refused.headers["x-ratelimit-reset"]) <= 60
    assert int(refused.headers["retry-after"]) == max(1, int(refused.headers["x-ratelimit-reset"]))
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "60 per 1 minute" in refused.json()["error"]["message"]


def test_remaining_counts_down_on_each_response(client: TestClient) -> None:
    remaining = [int(run_task(client).headers["x-ratelimit-remaining"]) for _ in range(3)]

    assert remaining == [59, 58, 57]


def test_reset_is_seconds_until_reset_not_an_epoch_time(client: TestClient) -> None:
    reset = int(run_task(client).headers["x-ratelimit-reset"])

    assert 0 <= reset <= 60


def test_error_responses_carry_the_limit_headers_too(client: TestClient) -> None:
    missing = client.get("/query/00000000000000000000000000000000", headers=headers())
    invalid = run_task(client, strategy="telepathy")

    assert missing.status_code == 404
    assert invalid.status_code == 400
    for response in (missing, invalid):
        assert all(name in response.headers for name in LIMIT_HEADERS)


def test_one_budget_per_key_across_all_endpoints(make_app: MakeApp) -> None:
    with make_app(rate_limit="4/minute") as client:
        statuses = [
            run_task(client).status_code,
            client.get("/query", headers=headers()).status_code,
            client.get("/providers", headers=headers()).status_code,
            client.get("/metrics", headers=headers()).status_code,
            client.get("/query", headers=headers()).status_code,
        ]

    assert statuses == [200, 200, 200, 200, 429]


def test_each_key_has_its_own_budget(make_app: MakeApp) -> None:
    with make_app(rate_limit="2/minute") as client:
        a = [run_task(client, key=KEY_A).status_code for _ in range(3)]
        b = [run_task(client, key=KEY_B).status_code for _ in range(3)]

    assert a == [200, 200, 429]
    assert b == [200, 200, 429]


def test_unauthenticated_requests_do_not_spend_a_keys_budget(make_app: MakeApp) -> None:
    with make_app(rate_limit="2/minute") as client:
        rejected = [
            client.get("/providers", headers=headers("wrong")).status_code for _ in range(5)
        ]
        admitted = [client.get("/providers", headers=headers()).status_code for _ in range(2)]

    assert rejected == [401] * 5
    assert admitted == [200, 200]


def test_several_limits_all_apply_and_headers_show_the_tightest(make_app: MakeApp) -> None:
    with make_app(rate_limit="100/minute;3/day") as client:
        responses = [client.get("/providers", headers=headers()) for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-limit"] for r in responses] == ["3"] * 4
    assert responses[2].headers["x-ratelimit-remaining"] == "0"


def test_malformed_bodies_spend_the_budget_too(make_app: MakeApp) -> None:
    with make_app(rate_limit="1/minute") as client:
        first = client.post(
            "/task", headers={**headers(), "Content-Type": "application/json"}, content=b"{"
        )
        second = run_task(client)

    assert first.status_code == 400
    assert second.status_code == 429


def test_bad_rate_limit_is_a_clear_start_up_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", "key1")
    monkeypatch.setenv("RATE_LIMIT", "sixty a minute")

    with pytest.raises(SettingsInvalid, match=r"RATE_LIMIT: .* examples: 60/minute"):
        load_service_settings()


def test_rejections_are_counted_in_metrics(make_app: MakeApp) -> None:
    with make_app(rate_limit="3/minute") as client:
        before = _rejections(client.get("/metrics", headers=headers()).text)
        for _ in range(4):  # the scrape was the 1st request: the 4th and 5th are refused
            client.get("/providers", headers=headers())
        after = _rejections(client.get("/metrics", headers=headers(KEY_B)).text)

    assert after - before == 2


def _rejections(metrics: str) -> float:
    name = "reasoning_agent_rate_limit_rejections_total"
    return next(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name))


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window-counter", "fixed-window"])
def test_every_strategy_admits_the_limit_then_refuses(make_app: MakeApp, strategy: str) -> None:
    # Per day: a burst of six cannot straddle the windows of the two counting strategies.
    with make_app(rate_limit="5/day", rate_limit_strategy=strategy) as client:
        responses = [run_task(client) for _ in range(6)]

    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert [int(r.headers["x-ratelimit-remaining"]) for r in responses] == [4, 3, 2, 1, 0, 0]
    assert 0 < int(responses[-1].headers["retry-after"]) <= 86400


def test_an_unknown_strategy_is_a_clear_start_up_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", "key1")
    monkeypatch.setenv("RATE_LIMIT_STRATEGY", "leaky-bucket")

    with pytest.raises(SettingsInvalid, match="RATE_LIMIT_STRATEGY"):
        load_service_settings()
