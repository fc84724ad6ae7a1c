"""What a task costs, at the price table (built-in prices, plugins.toml's [prices] over them):
per call in the trace, per task in the answer, in /metrics; unknown prices are unknown, never
zero; `max_cost_usd` reserves each batch's worst case and ends the task within it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from providers import load_settings
from tests.api.conftest import MakeApp, headers, run_task, write_plugins_toml
from tests.mock_upstreams import Fault, OpenAIMock

KEY = "sk-test-cost"
PRICES = '[prices."openai/gpt-4.1-mini"]\ninput = 1.0\noutput = 10.0\ndate = 2026-11-01\n'


@pytest.fixture
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key=KEY) as mock:
        yield mock


@pytest.fixture
def client(
    make_app: MakeApp, upstream: OpenAIMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    config = write_plugins_toml(
        tmp_path,
        f'default_provider = "openai"\n{PRICES}'
        f'[providers.openai]\nbase_url = "{upstream.base_url}"\nmax_retries = 0\n'
        f'[providers.local]\ntype = "openai_compatible"\nbase_url = "{upstream.base_url}"\n'
        'model = "unpriced"\napi_key_env = "OPENAI_API_KEY"\n',
    )
    with make_app(providers=load_settings(config)) as test_client:
        yield test_client


def test_each_call_and_the_task_have_their_cost(client: TestClient, upstream: OpenAIMock) -> None:
    upstream.enqueue(Fault.reply("Final answer: 4", usage=(1000, 100)))
    body = run_task(client, trace=True).json()
    # 1000 prompt tokens at $1/M and 100 completion tokens at $10/M: $0.002.
    assert body["cost_usd"] == pytest.approx(0.002)
    assert body["steps"][0]["cost_usd"] == pytest.approx(0.002)
    stored = client.get(f"/query/{body['id']}", headers=headers()).json()
    assert stored["steps"][0]["cost_usd"] == pytest.approx(0.002)
    assert stored["cost_usd"] == pytest.approx(0.002)  # the history says what it cost


def test_an_unknown_price_is_unknown_not_zero(client: TestClient) -> None:
    body = run_task(client, provider="local", trace=True).json()
    assert body["cost_usd"] is None and body["steps"][0]["cost_usd"] is None


def test_the_offline_provider_is_free(client: TestClient) -> None:
    assert run_task(client, provider="echo").json()["cost_usd"] == 0.0


def test_costs_are_counted_by_provider_and_model(client: TestClient, upstream: OpenAIMock) -> None:
    def total() -> float:
        text = client.get("/metrics", headers=headers()).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "reasoning_agent_cost_usd_total"
            and sample.labels.get("provider") == "openai"
        )

    before = total()
    upstream.enqueue(Fault.reply("x", usage=(1000, 100)))
    run_task(client)
    assert total() - before == pytest.approx(0.002)


def test_max_cost_caps_each_call_and_ends_the_task_within_it(
    client: TestClient, upstream: OpenAIMock
) -> None:
    # refine, three rounds (seven calls), with money for about two: each call's max_tokens is
    # capped at its share of what is left, and the task ends with its best answer so far.
    upstream.always = Fault.reply("an answer", usage=(100, 20))
    body = run_task(client, strategy="refine", rounds=3, max_cost_usd=0.0007, trace=True).json()
    assert body["budget_exhausted"] and body["budget_reason"] == "max_cost_usd"
    assert body["cost_usd"] <= 0.0007 + 0.0003  # at most one call's worst case over
    assert body["calls"] < 7
    caps = [request.json["max_completion_tokens"] for request in upstream.requests]
    assert all(isinstance(cap, int) and cap >= 1 for cap in caps)


def test_max_cost_with_an_unknown_price_is_refused(client: TestClient) -> None:
    response = run_task(client, provider="local", max_cost_usd=1.0)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_price"
