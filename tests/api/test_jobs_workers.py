"""Background tasks on the Redis queue with real worker processes: a 1,000-task drain by two
workers, a worker killed with -9 in the middle of a task, Redis restarted while tasks are
queued, and a cancel reaching a task on another process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from api.persistence import parse_database_url
from tests.api.conftest import (
    ADMIN_KEY,
    REDIS_URL,
    Server,
    headers,
    server_env,
    unique_prefix,
    write_plugins_toml,
)
from tests.api.jobs_support import Worker
from tests.api.test_ratelimit_redis import PrivateRedis
from tests.mock_upstreams import OpenAIMock

UPSTREAM_KEY = "sk-test-jobs-workers"


def job_env(tmp_path: Path, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    settings = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "JOB_KEY_PREFIX": unique_prefix(),
        "RATE_LIMIT": "1000000/minute",
        "JOB_MAX_ACTIVE_PER_KEY": "100000",
        "JOB_LEASE_SECONDS": "2",
        "JOB_SWEEP_SECONDS": "0.5",
        "JOB_REQUEUE_SECONDS": "3",
        "JOB_SHUTDOWN_SECONDS": "5",
    }
    return server_env(tmp_path, **{**settings, **extra})


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(env: dict[str, str], name: str) -> Worker:
        worker = Worker(tmp_path, env, f"{name}-{len(started)}")
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()
    for worker in started:
        assert "Traceback" not in worker.output(), worker.output()[-4000:]


async def _sql(url: str, statement: str) -> list[Any]:
    engine = create_async_engine(parse_database_url(url).url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(statement))).all())
    finally:
        await engine.dispose()


def sql(url: str, statement: str) -> list[Any]:
    return asyncio.run(_sql(url, statement))


def get_task(server: Server, task_id: str) -> dict[str, Any]:
    record: dict[str, Any] = httpx.get(
        f"{server.url}/task/{task_id}", headers=headers(), timeout=10
    ).json()
    return record


def wait_for(
    server: Server, task_id: str, statuses: tuple[str, ...], timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    record = get_task(server, task_id)
    while record["status"] not in statuses and time.monotonic() < deadline:
        time.sleep(0.1)
        record = get_task(server, task_id)
    return record


def submit(server: Server, **body: Any) -> httpx.Response:
    body.setdefault("prompt", "Final answer: 5")
    return httpx.post(
        f"{server.url}/task", headers=headers(), json={"background": True, **body}, timeout=30
    )


def test_a_thousand_tasks_drained_by_two_workers_each_run_once(
    serve: Callable[..., Server],
    workers: Callable[..., Worker],
    tmp_path: Path,
    fresh_pg_database_url: str,
) -> None:
    # The default lease: short leases are for the crash tests; on a loaded machine a 2 s lease
    # can expire under a task that is merely slow, which reruns it (safely, but attempts = 2).
    env = job_env(
        tmp_path, fresh_pg_database_url, REDIS_URL, JOB_CONCURRENCY="32", JOB_LEASE_SECONDS="30"
    )
    server = serve(env)
    pool = [workers(env, "a"), workers(env, "b")]
    count = 1000

    async def submit_all() -> list[httpx.Response | BaseException]:
        # 32 in flight, the rest waiting here rather than in httpx's pool, which rescans its
        # queue per request: with all 1,000 in it the client took ~9 s (on a slow VM) to send
        # its first request, and once lost 2 to a ReadError that the server never saw (998
        # access lines), a keep-alive connection idle past uvicorn's 5 s closed as the client
        # reused it. Submitting went from ~30 s to ~17 s there.
        gate = asyncio.Semaphore(32)
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as http:

            async def submit(i: int) -> httpx.Response:
                async with gate:
                    return await http.post(
                        "/task",
                        headers=headers(),
                        json={"prompt": f"Final answer: {i}", "background": True},
                    )

            return await asyncio.gather(*(submit(i) for i in range(count)), return_exceptions=True)

    started = time.perf_counter()
    answers = asyncio.run(submit_all())
    submitted = time.perf_counter() - started
    outcomes = Counter(
        a.status_code if isinstance(a, httpx.Response) else type(a).__name__ for a in answers
    )
    assert outcomes == Counter({202: count}), (outcomes, server.output()[-3000:])
    responses = [a for a in answers if isinstance(a, httpx.Response)]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == count
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        active = sql(
            fresh_pg_database_url,
            "SELECT count(*) FROM tasks WHERE status IN ('queued', 'running')",
        )[0][0]
        if active == 0:
            break
        time.sleep(0.1)
    wall = time.perf_counter() - started
    rows = sql(
        fresh_pg_database_url,
        "SELECT status, attempts, source, count(*) FROM tasks GROUP BY status, attempts, source",
    )
    assert [tuple(row) for row in rows] == [("succeeded", 1, "job", count)]
    stored = sql(fresh_pg_database_url, "SELECT id, answer FROM tasks")
    assert {row[0] for row in stored} == ids
    assert sorted(int(row[1].removeprefix("Final answer: ")) for row in stored) == list(
        range(count)
    )
    finished = [w.metric("reasoning_agent_jobs_finished_total") for w in pool]
    assert sum(finished) == count and all(n > 0 for n in finished)
    print(
        f"\n1,000-task drain: submitted in {submitted:.2f} s, all done in {wall:.2f} s "
        f"({count / wall:.0f} tasks/s); per worker {finished}; rows {[tuple(r) for r in rows]}"
    )


@pytest.fixture
def slow_upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key=UPSTREAM_KEY, latency=3.0) as mock:
        yield mock


def slow_config(tmp_path: Path, upstream: OpenAIMock) -> str:
    directory = tmp_path / "slow"
    directory.mkdir(exist_ok=True)
    config = write_plugins_toml(
        directory,
        'default_provider = "openai"\n[providers.openai]\n'
        f'base_url = "{upstream.base_url}"\nmax_retries = 0\nmultiple_samples = false\n',
    )
    return str(config)


def test_a_worker_killed_mid_task_loses_it_to_another_and_one_record_remains(
    serve: Callable[..., Server],
    workers: Callable[..., Worker],
    tmp_path: Path,
    fresh_pg_database_url: str,
    slow_upstream: OpenAIMock,
) -> None:
    # One task at a time per worker: with two tasks in flight, each worker holds one.
    env = job_env(
        tmp_path,
        fresh_pg_database_url,
        REDIS_URL,
        OPENAI_API_KEY=UPSTREAM_KEY,
        REASONING_AGENT_CONFIG=slow_config(tmp_path, slow_upstream),
        JOB_CONCURRENCY="1",
    )
    server = serve(env)
    doomed, survivor = workers(env, "doomed"), workers(env, "survivor")
    ids = [submit(server, prompt=f"Final answer: {i}").json()["id"] for i in (1, 2)]
    deadline = time.monotonic() + 10
    while slow_upstream.waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow_upstream.waiting == 2
    assert [get_task(server, t)["status"] for t in ids] == ["running", "running"]
    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait()
    killed_at = time.monotonic()

    records = [wait_for(server, t, ("succeeded", "failed"), timeout=30) for t in ids]
    took = time.monotonic() - killed_at
    assert [r["status"] for r in records] == ["succeeded", "succeeded"]
    assert [r["answer"] for r in records] == ["Final answer: 1", "Final answer: 2"]
    assert sorted(r["attempts"] for r in records) == [1, 2]  # the killed one ran again
    rows = sql(fresh_pg_database_url, "SELECT status, count(*) FROM tasks GROUP BY status")
    assert [tuple(r) for r in rows] == [("succeeded", 2)]  # one record per task
    assert survivor.metric("reasoning_agent_jobs_finished_total") == 2
    rerun = next(r for r in records if r["attempts"] == 2)
    events = httpx.get(f"{server.url}/task/{rerun['id']}/events", headers=headers(), timeout=10)
    running = [line for line in events.text.splitlines() if line.startswith('data: {"status"')]
    assert running == [
        'data: {"status":"running","attempt":1}',
        'data: {"status":"running","attempt":2}',
    ]
    print(
        f"\nkill -9: task {rerun['id']} (held by the killed worker) rerun on the survivor, "
        f"done {took:.1f} s after the kill; the survivor's own task "
        f"{next(r['id'] for r in records if r['attempts'] == 1)} finished once; 2 rows"
    )


def test_redis_restarted_while_tasks_are_queued_they_run_once_it_is_back(
    serve: Callable[..., Server],
    workers: Callable[..., Worker],
    tmp_path: Path,
    fresh_pg_database_url: str,
) -> None:
    private = PrivateRedis(tmp_path).start()
    try:
        env = job_env(
            tmp_path,
            fresh_pg_database_url,
            private.url,
            RATE_LIMIT_STORAGE_URI="memory://",
        )
        server = serve(env)
        queued = [submit(server).json()["id"] for _ in range(5)]  # no worker yet: they wait
        assert all(get_task(server, t)["status"] == "queued" for t in queued)
        private.stop()  # the queue's messages die with it (no persistence)
        worker = workers(env, "through-the-outage")  # starts, and waits, while Redis is down

        refused = submit(server)
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "queue_unavailable" and refused.headers["retry-after"]
        lost = refused.headers["location"].rsplit("/", 1)[-1]
        assert lost in error["message"]
        assert get_task(server, lost)["status"] == "queued"

        time.sleep(1)
        assert all(get_task(server, t)["status"] == "queued" for t in [*queued, lost])
        private.start()  # empty: every message is gone
        back = time.monotonic()
        outcomes = {
            t: wait_for(server, t, ("succeeded", "failed"))["status"] for t in [*queued, lost]
        }
        took = time.monotonic() - back
        assert set(outcomes.values()) == {"succeeded"}, outcomes
        rows = sql(
            fresh_pg_database_url, "SELECT status, attempts, count(*) FROM tasks GROUP BY 1, 2"
        )
        assert [tuple(r) for r in rows] == [("succeeded", 1, 6)]
        print(
            f"\nRedis restart: {len(queued)} queued tasks lost their messages, 1 got 503 "
            f"queue_unavailable; {took:.1f} s after the restart all had run once (the sweeper "
            f"re-enqueued {worker.metric('reasoning_agent_job_retries_total'):.0f}): {outcomes}"
        )
    finally:
        private.stop()


def test_a_cancel_reaches_a_task_running_on_a_worker(
    serve: Callable[..., Server],
    workers: Callable[..., Worker],
    tmp_path: Path,
    fresh_pg_database_url: str,
    slow_upstream: OpenAIMock,
) -> None:
    env = job_env(
        tmp_path,
        fresh_pg_database_url,
        REDIS_URL,
        OPENAI_API_KEY=UPSTREAM_KEY,
        REASONING_AGENT_CONFIG=slow_config(tmp_path, slow_upstream),
        JOB_CONCURRENCY="1",
    )
    server = serve(env)
    workers(env, "w")
    running = submit(server, strategy="self_consistency", samples=3).json()["id"]
    queued = submit(server).json()["id"]
    deadline = time.monotonic() + 10
    while slow_upstream.waiting < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    cancel_queued = httpx.post(f"{server.url}/task/{queued}/cancel", headers=headers())
    assert cancel_queued.status_code == 200 and cancel_queued.json()["status"] == "cancelled"
    cancel_running = httpx.post(f"{server.url}/task/{running}/cancel", headers=headers())
    assert cancel_running.status_code == 202
    deadline = time.monotonic() + 2.5  # the worker notices within a lease renewal (~0.7 s)
    while slow_upstream.closed_early < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow_upstream.closed_early == 3
    record = wait_for(server, running, ("cancelled",), timeout=5)
    assert record["status"] == "cancelled" and record["calls"] == 3
    time.sleep(1)
    assert get_task(server, queued)["attempts"] == 0 and slow_upstream.calls == 3
    admin = httpx.get(
        f"{server.url}/query", headers=headers(ADMIN_KEY), params={"status": "cancelled"}
    )
    assert len(admin.json()["data"]) == 2


def test_a_stopping_worker_hands_back_what_it_cannot_finish_in_time(
    serve: Callable[..., Server],
    workers: Callable[..., Worker],
    tmp_path: Path,
    fresh_pg_database_url: str,
    slow_upstream: OpenAIMock,
) -> None:
    env = job_env(
        tmp_path,
        fresh_pg_database_url,
        REDIS_URL,
        OPENAI_API_KEY=UPSTREAM_KEY,
        REASONING_AGENT_CONFIG=slow_config(tmp_path, slow_upstream),
    )
    server = serve(env)
    stopping = workers({**env, "JOB_SHUTDOWN_SECONDS": "0.5"}, "stopping")
    task_id = submit(server).json()["id"]
    deadline = time.monotonic() + 10
    while slow_upstream.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    stopping.process.send_signal(signal.SIGTERM)
    assert stopping.process.wait(timeout=15) == 0
    record = get_task(server, task_id)
    assert record["status"] == "queued" and record["attempts"] == 1  # handed back, not failed
    assert slow_upstream.closed_early == 1
    workers(env, "next")
    record = wait_for(server, task_id, ("succeeded", "failed"))
    assert record["status"] == "succeeded" and record["attempts"] == 2
