"""POST /task throughput and latency, beside a bare FastAPI floor; history write throughput.

HTTP part. Three processes on loopback:
- the mock OpenAI upstream (`tests.mock_upstreams`, its own process),
- the server under test: `uvicorn api.main:app` (1 worker; openai provider pointed at the mock,
  history on SQLite in a temp dir, a rate limit far above the load) and then, the same way,
  `uvicorn bench.floor_app:app` (a trivial FastAPI endpoint: the floor),
- the load client (aiohttp, its own process) at each concurrency.
On a 2-core machine the server is pinned to CPU 0 and the mock + client to CPU 1 (`--no-pin`
to turn off), so the server's numbers are not eaten by the load generator. Every level runs a
warm-up, then at most `--requests` requests or `--seconds` seconds, whichever ends first.

Store part. Concurrent `TaskStore.add` throughput in-process: SQLite (synchronous FULL and
NORMAL, with and without group commit) and PostgreSQL (with and without group commit), at
several concurrencies, to show that writing does not serialise the service.

    python bench/service_bench.py                 # everything (about 3 minutes)
    python bench/service_bench.py --quick         # fewer requests
    python bench/service_bench.py --http-only | --store-only
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.harness import (  # noqa: E402
    BENCH_KEY,
    LOAD_CPU,
    SERVER_CPU,
    UPSTREAM_KEY,
    base_env,
    percentile,
    pin,
    uvicorn_server,
)

TASK_BODY = {"prompt": "What is 2 + 2?", "provider": "openai", "strategy": "direct"}


# --- load client (runs in its own process: `--client`) ------------------------------------------


async def load(
    url: str, key: str, body: dict[str, Any], concurrency: int, requests: int, seconds: float
) -> dict[str, Any]:
    import aiohttp

    payload = json.dumps(body).encode()
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            started = time.perf_counter()
            async with session.post(f"{url}/task", data=payload, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append((time.perf_counter() - started) * 1000)

        # Warm-up: connections open, caches filled; not counted.
        warmup = max(concurrency * 5, 100)
        await asyncio.gather(*(one() for _ in range(warmup)))
        latencies.clear()
        statuses.clear()

        issued = itertools.count()
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while next(issued) < requests and time.perf_counter() < deadline:
                await one()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "elapsed_s": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "statuses": statuses,
    }


# --- processes ----------------------------------------------------------------------------------


def run_client(
    url: str, key: str, concurrency: int, requests: int, seconds: float, cpu: int | None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--client", url, "--key", key]
    command += ["--concurrency", str(concurrency), "--requests", str(requests)]
    command += ["--seconds", str(seconds)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    pin(process.pid, cpu)
    out, _ = process.communicate(timeout=seconds + 120)
    if process.returncode != 0:
        raise RuntimeError(f"load client failed ({process.returncode})")
    result: dict[str, Any] = json.loads(out)
    return result


def http_bench(
    levels: list[int], requests: int, seconds: float, pinned: bool, database_url: str | None
) -> None:
    from sqlalchemy import func, select

    from api.persistence import open_store
    from api.persistence.models import tasks
    from tests.mock_upstreams import MockProcess

    server_cpu = SERVER_CPU if pinned else None
    load_cpu = LOAD_CPU if pinned else None
    rows: list[tuple[str, int, dict[str, Any]]] = []
    with (
        tempfile.TemporaryDirectory(prefix="ra-bench-") as tmp,
        MockProcess("openai", api_key=UPSTREAM_KEY) as upstream,
    ):
        work = Path(tmp)
        assert upstream._proc is not None
        pin(upstream._proc.pid, load_cpu)
        service_env = base_env(
            API_KEYS=BENCH_KEY,
            RATE_LIMIT="100000000/minute",
            DATA_DIR=str(work / "data"),
            OPENAI_API_KEY=UPSTREAM_KEY,
            OPENAI_BASE_URL=upstream.base_url,
            LOG_LEVEL="WARNING",
        )
        if database_url:
            service_env["DATABASE_URL"] = database_url
        print(f"mock upstream: {upstream.base_url} (own process)", flush=True)
        for label, app, env in (
            ("floor (bare FastAPI)", "bench.floor_app:app", base_env()),
            ("POST /task (openai, direct)", "api.main:app", service_env),
        ):
            log = work / f"{app.split(':')[0]}.log"
            with uvicorn_server(app, env, work, log, server_cpu) as url:
                for concurrency in levels:
                    result = run_client(url, BENCH_KEY, concurrency, requests, seconds, load_cpu)
                    rows.append((label, concurrency, result))
                    print(f"  {label:<28} c={concurrency:<3} {fmt(result)}", flush=True)

        async def history_rows() -> int:
            store = await open_store(f"sqlite:///{work / 'data' / 'reasoning-agent.db'}")
            try:
                async with store.engine.connect() as conn:
                    count: int = (
                        await conn.execute(select(func.count()).select_from(tasks))
                    ).scalar_one()
                return count
            finally:
                await store.aclose()

        recorded = None if database_url else asyncio.run(history_rows())

    print()
    print("| endpoint | concurrency | requests/s | p50 ms | p90 ms | p99 ms | non-200 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, concurrency, r in rows:
        bad = sum(n for status, n in r["statuses"].items() if str(status) != "200")
        print(
            f"| {label} | {concurrency} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {bad} |"
        )
    if recorded is not None:
        print(f"\nhistory rows written by the service (incl. warm-up): {recorded}")


def fmt(r: dict[str, Any]) -> str:
    return (
        f"{r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p90 {r['p90_ms']:6.2f} ms  "
        f"p99 {r['p99_ms']:6.2f} ms  ({r['requests']} in {r['elapsed_s']:.1f}s, {r['statuses']})"
    )


# --- store write benchmark ----------------------------------------------------------------------


@dataclass(frozen=True)
class StoreVariant:
    label: str
    url: str
    group_commit: bool


def record(i: int) -> Any:
    from api.persistence import TaskRecord

    return TaskRecord(
        id=uuid.uuid4().hex,
        key_id="bench",
        created_at=datetime.now(UTC),
        status="succeeded",
        prompt=f"What is {i} + {i}? Think step by step and answer with a number.",
        system=None,
        provider="openai",
        model="gpt-4.1-mini",
        strategy="direct",
        params={"temperature": 0.0},
        answer=str(2 * i),
        confidence=None,
        votes=None,
        prompt_tokens=20,
        completion_tokens=3,
        calls=1,
        latency_ms=12.5,
        error_code=None,
        error_message=None,
        trace=None,
        budget_exhausted=False,
    )


async def store_level(variant: StoreVariant, concurrency: int, count: int) -> dict[str, float]:
    from api.persistence import SqlTaskStore, open_store

    opened = await open_store(variant.url)
    store = opened
    if not variant.group_commit:
        # Same engine, one row per transaction: what a plain "session.add + commit" costs.
        await opened.aclose()
        from api.persistence.engine import create_engine, parse_database_url

        target = parse_database_url(variant.url)
        store = SqlTaskStore(
            create_engine(target), target, writers=min(concurrency, 8), max_batch=1
        )
    latencies: list[float] = []
    records = [record(i) for i in range(count)]
    cursor = iter(records)

    async def worker() -> None:
        for rec in cursor:
            started = time.perf_counter()
            await store.add(rec)
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(store.add(record(-1)) for _ in range(concurrency)))  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    await store.aclose()
    latencies.sort()
    return {
        "adds_per_s": count / elapsed,
        # all threads of this process (aiosqlite's included), not the database server's
        "cpu_ms_per_add": cpu * 1000 / count,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


async def pg_admin(admin_url: str, sql: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from api.persistence import parse_database_url

    engine = create_async_engine(
        parse_database_url(admin_url).url, isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


def store_bench(levels: list[int], count: int, postgres_url: str | None) -> None:
    from sqlalchemy.engine import make_url

    rows: list[tuple[str, int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="ra-store-bench-") as tmp:
        variants = [
            StoreVariant("SQLite FULL, group commit (default)", f"sqlite:///{tmp}/full.db", True),
            StoreVariant(
                "SQLite NORMAL, group commit", f"sqlite:///{tmp}/normal.db?synchronous=normal", True
            ),
            StoreVariant("SQLite FULL, one commit per add", f"sqlite:///{tmp}/single.db", False),
        ]
        pg_name = f"ra_bench_{uuid.uuid4().hex[:10]}"
        if postgres_url:
            try:
                asyncio.run(pg_admin(postgres_url, f'CREATE DATABASE "{pg_name}"'))
            except Exception as error:  # a benchmark without PostgreSQL still reports SQLite
                print(f"PostgreSQL skipped: {type(error).__name__}")
                postgres_url = None
        if postgres_url:
            pg = make_url(postgres_url).set(database=pg_name).render_as_string(False)
            variants += [
                StoreVariant("PostgreSQL, group commit (default)", pg, True),
                StoreVariant("PostgreSQL, one commit per add", pg, False),
            ]
        try:
            for variant in variants:
                for concurrency in levels:
                    result = asyncio.run(store_level(variant, concurrency, count))
                    rows.append((variant.label, concurrency, result))
                    print(
                        f"  {variant.label:<38} c={concurrency:<3} "
                        f"{result['adds_per_s']:8.0f} adds/s  p50 {result['p50_ms']:6.2f} ms  "
                        f"p99 {result['p99_ms']:6.2f} ms  "
                        f"client CPU {result['cpu_ms_per_add']:.3f} ms/add",
                        flush=True,
                    )
        finally:
            if postgres_url:
                asyncio.run(pg_admin(postgres_url, f'DROP DATABASE IF EXISTS "{pg_name}"'))
    print()
    print("| store | concurrent adds | adds/s | p50 ms | p99 ms | service CPU ms/add |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, concurrency, r in rows:
        print(
            f"| {label} | {concurrency} | {r['adds_per_s']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['cpu_ms_per_add']:.3f} |"
        )


# --- entry point --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests and rows")
    parser.add_argument("--http-only", action="store_true")
    parser.add_argument("--store-only", action="store_true")
    parser.add_argument("--concurrency", default="1,16", help="HTTP levels (default 1,16)")
    parser.add_argument("--requests", type=int, default=None, help="per level (default 4000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="cap per level")
    parser.add_argument("--store-rows", type=int, default=None, help="per level (default 3000)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "RA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="server where a throw-away database is created ('' to skip PostgreSQL)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument(
        "--service-database-url",
        default=None,
        help="history of the service under test (default: SQLite in a temp dir)",
    )
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--key", default=BENCH_KEY, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.client:
        levels = [int(args.concurrency)]
        result = asyncio.run(
            load(args.client, args.key, TASK_BODY, levels[0], args.requests, args.seconds)
        )
        print(json.dumps(result))
        return

    requests = args.requests or (800 if args.quick else 4000)
    store_rows = args.store_rows or (500 if args.quick else 3000)
    levels = [int(c) for c in args.concurrency.split(",")]
    pinned = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{'server on CPU 0, mock + client on CPU 1' if pinned else 'no CPU pinning'}",
        flush=True,
    )
    if not args.store_only:
        print(f"\n## HTTP: up to {requests} requests or {args.seconds:.0f}s per level", flush=True)
        http_bench(levels, requests, args.seconds, pinned, args.service_database_url)
    if not args.http_only:
        print(f"\n## Store writes: {store_rows} TaskStore.add per level", flush=True)
        store_bench([1, 16, 64], store_rows, args.postgres_url or None)


if __name__ == "__main__":
    main()
