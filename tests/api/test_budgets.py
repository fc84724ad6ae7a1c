"""Per-key spend budgets (`KEY_BUDGETS`): a reservation before the task, its settlement after,
shared across instances through Redis (one Lua script), or kept in memory.

Real Redis on 127.0.0.1:6379 with a key prefix per test, real SQLite, the OpenAI mock upstream
at the network edge with a price in plugins.toml; the must-show test runs two real servers."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from agent_core import CallStarted
from api.budget_table import NANO, parse_budgets
from api.budgets import Ledger
from api.config import SettingsInvalid, load_service_settings
from api.tasks import TaskPipeline, TaskSpec
from api.tasks.pipeline import Progress, TaskAccepted
from providers import ProvidersSettings, load_registry, load_settings
from providers.task_options import TaskOptions
from tests.api.conftest import (
    KEY_A,
    KEY_B,
    REDIS_URL,
    MakeApp,
    free_port,
    headers,
    key_id,
    run_task,
    server_env,
    unique_prefix,
    write_plugins_toml,
)
from tests.mock_upstreams import Fault, OpenAIMock

UPSTREAM_KEY = "sk-test-budgets"
# $1 per million prompt tokens, $10 per million completion tokens.
PRICES = '[prices."openai/gpt-4.1-mini"]\ninput = 1.0\noutput = 10.0\ndate = 2026-11-01\n'
USAGE = (100, 150)  # $0.0001 + $0.0015 = $0.0016 per call
CALL_COST = 0.0016


def plugins(upstream: OpenAIMock) -> str:
    return (
        f'default_provider = "openai"\n{PRICES}'
        f'[providers.openai]\nbase_url = "{upstream.base_url}"\nmax_retries = 0\n'
        f'[providers.local]\ntype = "openai_compatible"\nbase_url = "{upstream.base_url}"\n'
        'model = "unpriced"\napi_key_env = "OPENAI_API_KEY"\n'
    )


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIMock]:
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    with OpenAIMock(api_key=UPSTREAM_KEY) as mock:
        mock.always = Fault.reply("Final answer: 42", usage=USAGE)
        yield mock


@pytest.fixture
def priced(upstream: OpenAIMock, tmp_path: Path) -> ProvidersSettings:
    return load_settings(write_plugins_toml(tmp_path, plugins(upstream)))


def ledger_of(client: TestClient) -> Ledger:
    ledger: Ledger = client.app.state.budgets  # type: ignore[attr-defined]
    return ledger


def redis_entry(prefix: str, key: str, when: datetime | None = None) -> dict[str, int]:
    """The ledger hash of `key` this UTC day, in nano-dollars (spent, reserved)."""
    day = (when or datetime.now(UTC)).strftime("%Y-%m-%d")
    raw: Any = redis.Redis.from_url(REDIS_URL).hgetall(f"{prefix}:budget:{key_id(key)}:d{day}")
    values = {k.decode(): int(v) for k, v in raw.items()}
    return {"spent": values.get("spent", 0), "reserved": values.get("reserved", 0)}


def remaining(response: Any) -> float:
    return float(response.headers["x-budget-remaining"])


# --- settings -------------------------------------------------------------------------------


def test_budgets_parse_and_bad_ones_are_refused_at_start() -> None:
    budgets = parse_budgets("*=5/day; 3f2a9c1d0e7b4a55 = 100.5/month")
    assert budgets["*"].usd == 5 and budgets["*"].period == "day"
    assert budgets["3f2a9c1d0e7b4a55"].usd == 100.5
    assert budgets["3f2a9c1d0e7b4a55"].period == "month"
    for bad in ("*=5/week", "abc", "*=0/day", "*=5/day;*=6/day", "*=-1/day"):
        with pytest.raises(SettingsInvalid, match="KEY_BUDGETS"):
            load_service_settings(api_keys=["k"], key_budgets=bad)
    with pytest.raises(SettingsInvalid, match="BUDGET_RESERVATION_USD"):
        load_service_settings(api_keys=["k"], budget_reservation_usd=1e9)


# --- in one instance, in memory ------------------------------------------------------------


def test_memory_budget_admits_until_spent_then_402_with_the_header(
    make_app: MakeApp, priced: ProvidersSettings
) -> None:
    budget = f"{key_id(KEY_A)}=0.005/day"
    with make_app(
        providers=priced,
        key_budgets=budget,
        budget_reservation_usd=0.002,
        budget_min_reservation_usd=0.0005,
    ) as client:
        statuses = []
        for _ in range(5):
            response = run_task(client)
            statuses.append(response.status_code)
            if response.status_code == 200:
                assert response.json()["cost_usd"] == pytest.approx(CALL_COST)
        # $0.005: three tasks of $0.0016 ($0.0048), then $0.0002 is left, under the minimum.
        assert statuses == [200, 200, 200, 402, 402]
        assert remaining(response) == pytest.approx(0.0002)
        error = response.json()["error"]
        assert error["code"] == "budget_exhausted" and error["type"] == "insufficient_quota"
        assert "resets at" in error["message"]
        # Every response of the budgeted key says what is left, not only the task's.
        listed = client.get("/query", headers=headers(KEY_A))
        assert remaining(listed) == pytest.approx(0.0002)
        # Refusals are counted, never by key.
        metrics = client.get("/metrics", headers=headers(KEY_B)).text
        refusals = [
            line
            for line in metrics.splitlines()
            if line.startswith("reasoning_agent_budget_refusals_total{")
        ]
        assert refusals and all("key" not in line for line in refusals)
        assert any('reason="exhausted"' in line for line in refusals)
        # A key without a budget: no header, no limit.
        other = run_task(client, key=KEY_B)
        assert other.status_code == 200 and "x-budget-remaining" not in other.headers
        assert ledger_of(client).budget_of(key_id(KEY_B)) is None


def test_the_header_after_a_task_is_what_is_left_after_it(
    make_app: MakeApp, priced: ProvidersSettings
) -> None:
    with make_app(providers=priced, key_budgets="*=1/day") as client:
        first = run_task(client)
        assert remaining(first) == pytest.approx(1 - CALL_COST)
        second = run_task(client, key=KEY_B)  # `*`: each key its own $1
        assert remaining(second) == pytest.approx(1 - CALL_COST)


def test_a_task_reserves_at_most_its_own_max_cost_and_runs_within_it(
    make_app: MakeApp, priced: ProvidersSettings, upstream: OpenAIMock
) -> None:
    upstream.always = Fault.reply("Final answer: 42")  # the mock counts real tokens
    with make_app(providers=priced, key_budgets="*=1/day") as client:
        body = run_task(client, max_cost_usd=0.0005, trace=True).json()
        # The engine held the task to its max_cost_usd (each call's max tokens capped).
        assert body["cost_usd"] <= 0.0005
        caps = [request.json["max_completion_tokens"] for request in upstream.requests]
        assert all(cap <= 50 for cap in caps)  # $0.0005 / ($10 / 1M) = 50 tokens at most


def test_an_unpriced_model_is_refused_for_a_budgeted_key_only(
    make_app: MakeApp, priced: ProvidersSettings
) -> None:
    with make_app(providers=priced, key_budgets=f"{key_id(KEY_A)}=1/day") as client:
        refused = run_task(client, provider="local")
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "unknown_price"
        assert "spend budget" in refused.json()["error"]["message"]
        assert run_task(client, key=KEY_B, provider="local").status_code == 200


def test_a_fallback_to_an_unpriced_model_is_charged_its_whole_reservation(
    make_app: MakeApp, upstream: OpenAIMock, tmp_path: Path
) -> None:
    config = write_plugins_toml(tmp_path, plugins(upstream) + '[fallback]\nopenai = ["local"]\n')
    upstream.always = None
    upstream.enqueue(Fault.error(503), Fault.reply("Final answer: 42", usage=USAGE))
    with make_app(
        providers=load_settings(config), key_budgets="*=1/day", budget_reservation_usd=0.002
    ) as client:
        response = run_task(client)
        assert response.status_code == 200 and response.json()["cost_usd"] is None
        # Its cost is unknown: the most it could have spent is charged, never nothing.
        assert remaining(response) == pytest.approx(1 - 0.002)


def test_a_stream_is_refused_before_it_starts(make_app: MakeApp, priced: ProvidersSettings) -> None:
    with make_app(
        providers=priced, key_budgets="*=0.002/day", budget_reservation_usd=0.002
    ) as client:
        ok = client.post("/task", headers=headers(), json={"prompt": "x", "stream": True})
        assert ok.status_code == 200 and "event: result" in ok.text
        refused = client.post("/task", headers=headers(), json={"prompt": "x", "stream": True})
        assert refused.status_code == 402
        assert refused.json()["error"]["code"] == "budget_exhausted"
        assert remaining(refused) == pytest.approx(0.0004)


def test_a_v1_stream_is_refused_before_it_starts_too(
    make_app: MakeApp, priced: ProvidersSettings
) -> None:
    body = {"model": "openai", "messages": [{"role": "user", "content": "x"}], "stream": True}
    with make_app(
        providers=priced, key_budgets="*=0.002/day", budget_reservation_usd=0.002
    ) as client:
        ok = client.post("/v1/chat/completions", headers=headers(), json=body)
        assert ok.status_code == 200 and "data: [DONE]" in ok.text
        refused = client.post("/v1/chat/completions", headers=headers(), json=body)
        assert refused.status_code == 402
        assert refused.json()["error"]["code"] == "budget_exhausted"


def test_a_stream_whose_client_left_at_once_releases_its_reservation(
    make_app: MakeApp, priced: ProvidersSettings, upstream: OpenAIMock
) -> None:
    upstream.always = Fault.reply("Final answer: 42", usage=USAGE, delay=0.5)
    prefix = unique_prefix()
    with make_app(
        providers=priced, key_budgets="*=1/day", redis_url=REDIS_URL, rate_limit_key_prefix=prefix
    ) as client:
        body = json.dumps({"prompt": "x", "stream": True}).encode()
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": body, "more_body": False}
        ]

        async def receive() -> dict[str, Any]:  # the body, then the client is gone
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            # The response never gets out (the peer is gone): the body is never iterated, so
            # the task never starts; only the response's close can release the reservation.
            if message["type"] == "http.response.start":
                await asyncio.sleep(3600)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/task",
            "raw_path": b"/task",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"x-api-key", KEY_A.encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }

        async def call() -> None:
            await client.app(scope, receive, send)  # type: ignore[arg-type]

        assert client.portal is not None
        client.portal.call(call)
        deadline = time.monotonic() + 10
        while redis_entry(prefix, KEY_A)["reserved"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert redis_entry(prefix, KEY_A)["reserved"] == 0
        assert remaining(client.get("/query", headers=headers())) > 1 - 0.002


def test_the_period_rolls_over_at_midnight_utc(
    make_app: MakeApp, priced: ProvidersSettings
) -> None:
    now = [datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)]
    prefix = unique_prefix()
    with make_app(
        providers=priced,
        key_budgets="*=0.002/day",
        budget_reservation_usd=0.002,
        redis_url=REDIS_URL,
        rate_limit_key_prefix=prefix,
    ) as client:
        ledger_of(client).clock = lambda: now[0]
        assert run_task(client).status_code == 200
        assert run_task(client).status_code == 402
        now[0] += timedelta(seconds=2)  # 00:00:01 on December 1st: a new day, a new budget
        fresh = run_task(client)
        assert fresh.status_code == 200
        assert remaining(fresh) == pytest.approx(0.002 - CALL_COST)
        assert redis_entry(prefix, KEY_A, datetime(2026, 11, 30, tzinfo=UTC))["spent"] == round(
            CALL_COST * NANO
        )


# --- Redis: reconciliation, outages -------------------------------------------------------


def test_a_failed_task_releases_its_reservation_and_pays_what_it_spent(
    make_app: MakeApp, priced: ProvidersSettings, upstream: OpenAIMock
) -> None:
    prefix = unique_prefix()
    with make_app(
        providers=priced,
        key_budgets="*=1/day",
        redis_url=REDIS_URL,
        rate_limit_key_prefix=prefix,
    ) as client:
        # refine: the draft is answered (and paid), the critique fails: the task fails.
        upstream.always = None
        upstream.enqueue(
            Fault.reply("Final answer: 1", usage=USAGE), Fault.error(400, message="bad request")
        )
        failed = run_task(client, strategy="refine", rounds=1)
        assert failed.status_code >= 400
        entry = redis_entry(prefix, KEY_A)
        assert entry == {"spent": round(CALL_COST * NANO), "reserved": 0}
        assert remaining(failed) == pytest.approx(1 - CALL_COST)


def test_redis_down_rejects_budgeted_keys_or_keeps_a_ledger_in_memory(
    make_app: MakeApp, priced: ProvidersSettings
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with make_app(providers=priced, key_budgets=f"{key_id(KEY_A)}=1/day", redis_url=dead) as client:
        refused = run_task(client)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "budget_unavailable"
        assert run_task(client, key=KEY_B).status_code == 200  # unbudgeted keys are untouched
    with make_app(
        providers=priced,
        key_budgets="*=0.002/day",
        budget_reservation_usd=0.002,
        redis_url=dead,
        budget_storage_down="memory",
    ) as client:
        assert run_task(client).status_code == 200
        assert run_task(client).status_code == 402  # still limited, per instance


async def test_a_cancelled_task_settles_what_it_spent(tmp_path: Path) -> None:
    prefix = unique_prefix()
    settings = ProvidersSettings.isolated(
        default_provider="slow",
        providers={"slow": {"type": "echo", "options": {"latency": 0.3}}},
        prices={"slow/echo-1": {"input": 100.0, "output": 100.0, "date": "2026-11-01"}},
    )
    registry = load_registry(settings)
    ledger = Ledger(
        parse_budgets("*=1/day"),
        redis_url=REDIS_URL,
        prefix=prefix,
        default_reservation_usd=0.5,
        min_reservation_usd=0.001,
        reservation_ttl=60,
        on_storage_down="reject",
        timeout=2.0,
    )
    await ledger.start()
    try:
        pipeline = TaskPipeline(registry, None, ledger)
        spec = TaskSpec.resolve(
            registry, prompt="Final answer: 7", strategy="refine", options=TaskOptions(rounds=2)
        )
        # Gone once the critique is sent: the draft was paid, the critique cancelled.
        stream = pipeline.events(spec, "k1")
        assert isinstance(await anext(stream), TaskAccepted)
        async for event in stream:
            started = event.event if isinstance(event, Progress) else None
            if isinstance(started, CallStarted) and started.purpose == "critique 1":
                break
        await stream.aclose()
        # Gone before the task even started: nothing spent, the reservation released.
        early = pipeline.events(spec, "k1")
        assert isinstance(await anext(early), TaskAccepted)
        await early.aclose()
        await pipeline.aclose()
        state = await ledger.remaining("k1")
        assert state is not None
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        raw: Any = redis.Redis.from_url(REDIS_URL).hgetall(f"{prefix}:budget:k1:d{day}")
        assert int(raw.get(b"reserved", 0)) == 0
        spent = int(raw[b"spent"])
        assert 0 < spent < 0.5 * NANO  # the draft's cost, only
        assert state.remaining_nano == NANO - spent
    finally:
        await ledger.aclose()
        await registry.aclose()


async def test_a_crashed_instances_reservation_expires() -> None:
    prefix = unique_prefix()

    def ledger(ttl: float) -> Ledger:
        return Ledger(
            parse_budgets("*=0.01/day"),
            redis_url=REDIS_URL,
            prefix=prefix,
            default_reservation_usd=0.01,
            min_reservation_usd=0.001,
            reservation_ttl=ttl,
            on_storage_down="reject",
            timeout=2.0,
        )

    crashed, alive = ledger(10), ledger(10)
    await crashed.start()
    await alive.start()
    try:
        held = await crashed.reserve("k", None)  # then never settled: the instance "crashed"
        assert held is not None and held.usd == pytest.approx(0.01)
        with pytest.raises(Exception, match="budget"):
            await alive.reserve("k", None)
        # The reservation's expiry is in Redis: move it to the past instead of waiting.
        client: Any = redis.Redis.from_url(REDIS_URL)
        client.zadd(held.store_key + ":exp", {held.id: 0})
        again = await alive.reserve("k", None)
        assert again is not None and again.usd == pytest.approx(0.01)
    finally:
        await crashed.aclose()
        await alive.aclose()


# --- the must-show: two instances, one Redis, concurrent requests -------------------------------


async def _load(urls: list[str], total: int, concurrency: int) -> list[httpx.Response]:
    """`total` requests over the servers in turn, `concurrency` of them in flight at any time
    (so budget freed by settled tasks is fought over by the next ones)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, i: int) -> httpx.Response:
        async with gate:
            return await client.post(
                f"{urls[i % len(urls)]}/task", headers=headers(), json={"prompt": f"q{i}"}
            )

    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(*(one(client, i) for i in range(total)))


LONG_ANSWER = "Final answer: 42. " + "Because the numbers add up, step by step. " * 60


@pytest.mark.parametrize(
    "answer",
    [
        # Usage scripted: $0.0016 a task whatever max_tokens the engine sent. A task given less
        # than that by the tail of the budget overspends its reservation: the worst case.
        pytest.param(Fault.reply("Final answer: 42", usage=USAGE, delay=0.05), id="scripted"),
        # Tokens counted by the mock, which honours max_completion_tokens as a real upstream
        # does: each task spends up to its reservation, capped by the engine.
        pytest.param(Fault.reply(LONG_ANSWER, delay=0.05), id="counted"),
    ],
)
def test_two_instances_never_overspend_together(
    serve: Any, tmp_path: Path, upstream: OpenAIMock, answer: Fault
) -> None:
    budget, reservation, requests, concurrency = 0.01, 0.002, 80, 16
    prefix = unique_prefix()
    upstream.always = answer
    (tmp_path / "config").mkdir()  # server_env writes its own default plugins.toml in tmp_path
    config = write_plugins_toml(tmp_path / "config", plugins(upstream))
    servers = []
    for n in range(2):
        env = server_env(
            tmp_path,
            REDIS_URL=REDIS_URL,
            RATE_LIMIT_KEY_PREFIX=prefix,
            RATE_LIMIT="1000/minute",
            KEY_BUDGETS=f"{key_id(KEY_A)}={budget}/day",
            BUDGET_RESERVATION_USD=str(reservation),
            BUDGET_MIN_RESERVATION_USD="0.0005",
            REASONING_AGENT_CONFIG=str(config),
            OPENAI_API_KEY=UPSTREAM_KEY,
            DATA_DIR=str(tmp_path / f"data-{n}"),
            LOG_LEVEL="WARNING",
        )
        servers.append(serve(env))

    responses = asyncio.run(_load([server.url for server in servers], requests, concurrency))

    statuses = Counter(response.status_code for response in responses)
    admitted = [response.json()["cost_usd"] for response in responses if response.is_success]
    spent = sum(admitted)
    overshoot = spent - budget
    kind = "scripted usage" if answer.usage else "counted tokens"
    print(
        f"\n[{kind}] budget ${budget}, reservation ${reservation}, {requests} requests "
        f"({concurrency} at a time) over 2 instances: {dict(statuses)}; admitted spend "
        f"${spent:.6f} over {len(admitted)} tasks; overshoot ${max(0.0, overshoot):.6f} "
        f"({overshoot:+.6f})"
    )
    refused = [response for response in responses if response.status_code == 402]
    assert set(statuses) == {200, 402}
    assert all(r.json()["error"]["code"] == "budget_exhausted" for r in refused)
    assert spent <= budget + reservation
    # The ledger agrees with the answers, and nothing is left reserved.
    entry = redis_entry(prefix, KEY_A)
    assert entry["reserved"] == 0
    assert entry["spent"] == pytest.approx(spent * NANO, abs=len(admitted))
    assert len(upstream.requests) == len(admitted)  # a refused task never reached the upstream
