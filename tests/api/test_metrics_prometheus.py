"""/metrics: valid Prometheus text whose counters move, with no per-key labels, summed
across worker processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import ADMIN_KEY, KEY_A, KEY_B, Server, headers, key_id, run_task

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    """Every sample, by name and sorted labels (parsing fails on invalid exposition)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _scrape(client: TestClient) -> Samples:
    response = client.get("/metrics", headers=headers(ADMIN_KEY))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


def test_counters_move_when_tasks_run(client: TestClient) -> None:
    before = _scrape(client)
    run_task(client, prompt="What is 2+2?", strategy="self_consistency", samples=3)
    after = _scrape(client)

    task = {"provider": "echo", "model": "echo-1", "strategy": "self_consistency"}
    assert (
        _value(after, "reasoning_agent_tasks_total", **task, outcome="succeeded")
        - _value(before, "reasoning_agent_tasks_total", **task, outcome="succeeded")
        == 1
    )
    calls = ("reasoning_agent_provider_call_duration_seconds_count",)
    call_labels = {"provider": "echo", "model": "echo-1", "outcome": "ok"}
    assert _value(after, *calls, **call_labels) - _value(before, *calls, **call_labels) == 3
    http = {"route": "/task", "method": "POST", "status": "200"}
    assert (
        _value(after, "reasoning_agent_http_requests_total", **http)
        - _value(before, "reasoning_agent_http_requests_total", **http)
        == 1
    )
    tokens = {"provider": "echo", "model": "echo-1", "kind": "completion"}
    assert _value(after, "reasoning_agent_tokens_total", **tokens) > _value(
        before, "reasoning_agent_tokens_total", **tokens
    )


def _total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the samples of `name` whose labels include `labels`."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def test_failed_tasks_are_counted_by_outcome(client: TestClient) -> None:
    name, labels = (
        "reasoning_agent_tasks_total",
        {"provider": "openai", "outcome": "not_configured"},
    )
    before = _total(_scrape(client), name, **labels)
    run_task(client, provider="openai")  # not configured in tests
    after = _total(_scrape(client), name, **labels)

    assert after - before == 1


def test_http_requests_are_labelled_by_route_template_not_path(client: TestClient) -> None:
    client.get("/query/0123456789abcdef0123456789abcdef", headers=headers())

    samples = _scrape(client)

    routes = {dict(labels).get("route") for (_, labels) in samples}
    assert "/query/{task_id}" in routes
    assert not any(route and "0123456789abcdef" in route for route in routes)


def test_build_info_and_in_flight_gauge_are_exposed(client: TestClient) -> None:
    samples = _scrape(client)
    names = {name for name, _ in samples}

    assert "reasoning_agent_build_info" in names
    assert "reasoning_agent_http_requests_in_flight" in names


def test_no_label_carries_a_key_or_key_id(client: TestClient) -> None:
    run_task(client, key=KEY_A)
    run_task(client, key=KEY_B)

    text = client.get("/metrics", headers=headers(ADMIN_KEY)).text

    for key in (KEY_A, KEY_B, ADMIN_KEY):
        assert key not in text
        assert key_id(key) not in text


def test_metrics_are_summed_across_worker_processes(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve(args=["--workers", "2"])
    deadline = time.monotonic() + 60
    while server.output().count("Application startup complete") < 2:  # both workers serve
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)

    async def burst() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await asyncio.gather(
                *(
                    http.post("/task", headers=headers(KEY_A), json={"prompt": f"n{i}"})
                    for i in range(20)
                )
            )

    asyncio.run(burst())
    totals = set()
    for _ in range(6):  # each scrape may be answered by either worker: all must agree
        text = httpx.get(f"{server.url}/metrics", headers=headers(ADMIN_KEY), timeout=10).text
        samples = _samples(text)
        totals.add(
            _value(
                samples,
                "reasoning_agent_tasks_total",
                provider="echo",
                model="echo-1",
                strategy="direct",
                outcome="succeeded",
            )
        )

    assert totals == {20.0}
