"""A 200 from POST /task means the record is committed: kill -9 right after loses nothing.

A real `reasoning-agent serve` process (echo provider, history on SQLite in a data directory or
on PostgreSQL) takes a concurrent batch of tasks; the moment the batch is acknowledged it gets
SIGKILL (no shutdown hook, no flush). A new server on the same data then lists every
acknowledged task in GET /query and serves each one from GET /query/{id}.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ADMIN_KEY, KEY_A, Server, headers, server_env

BATCH = 120
CONCURRENCY = 24


@pytest.fixture(params=["sqlite", "postgresql"])
def history_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    env = server_env(tmp_path, RATE_LIMIT="100000/minute")
    if request.param == "postgresql":
        env["DATABASE_URL"] = request.getfixturevalue("fresh_pg_database_url")
    return env


async def post_tasks(
    server: Server, count: int, on_ack: Callable[[int], None] = lambda _: None
) -> list[str]:
    """POSTs `count` tasks, CONCURRENCY at a time; returns the ids answered with 200."""
    acknowledged: list[str] = []
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)

    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:

        async def one(i: int) -> None:
            async with gate:
                try:
                    response = await client.post(
                        "/task", headers=headers(KEY_A), json={"prompt": f"durable task {i}"}
                    )
                except httpx.TransportError:
                    return  # the server died before answering: not acknowledged
            if response.status_code == 200:
                acknowledged.append(response.json()["id"])
                on_ack(len(acknowledged))

        await asyncio.gather(*(one(i) for i in range(count)))
    return acknowledged


def kill9(server: Server) -> None:
    server.process.kill()  # SIGKILL: no lifespan shutdown, no pool drain
    server.process.wait()


async def listed_ids(server: Server) -> set[str]:
    ids: set[str] = set()
    cursor: str | None = None
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        while True:
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            response = await client.get("/query", headers=headers(ADMIN_KEY), params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            ids.update(item["id"] for item in page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                return ids


async def fetchable_ids(server: Server, ids: list[str]) -> set[str]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.get(f"/query/{task_id}", headers=headers(KEY_A)) for task_id in ids)
        )
    return {task_id for task_id, r in zip(ids, responses, strict=True) if r.status_code == 200}


async def test_every_acknowledged_task_survives_kill9_right_after_the_batch(
    serve: Callable[..., Server], history_env: dict[str, str]
) -> None:
    first = serve(history_env)
    acknowledged = await post_tasks(first, BATCH)
    kill9(first)
    assert len(acknowledged) == BATCH  # the echo provider answers every one

    second = serve(history_env)

    assert await listed_ids(second) == set(acknowledged)
    assert await fetchable_ids(second, acknowledged) == set(acknowledged)


async def test_every_acknowledged_task_survives_kill9_with_requests_in_flight(
    serve: Callable[..., Server], history_env: dict[str, str]
) -> None:
    first = serve(history_env)
    # SIGKILL as soon as half the batch is acknowledged, with up to CONCURRENCY-1 writes queued
    # or mid-commit: those may be lost (never acknowledged), the acknowledged ones may not.
    acknowledged = await post_tasks(
        first, BATCH, on_ack=lambda n: first.process.kill() if n == BATCH // 2 else None
    )
    kill9(first)
    assert len(acknowledged) >= BATCH // 2

    second = serve(history_env)

    assert set(acknowledged) <= await listed_ids(second)
    assert await fetchable_ids(second, acknowledged) == set(acknowledged)
