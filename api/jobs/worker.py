"""The `reasoning-agent worker` process: runs background tasks from the Redis queue.

It opens what the API opens (settings, provider registry, history store), starts a
`JobRuntime` in the worker role (Taskiq's receiver on the Redis list, JOB_CONCURRENCY tasks at
once, the sweeper), and serves `GET /metrics` (Prometheus: queue depth, running, durations,
retries, and the task metrics of the pipeline), `GET /healthz` (the receiver and sweeper are
alive) and `GET /readyz` (database and Redis reachable) on WORKER_HOST:WORKER_PORT.

SIGTERM or SIGINT: it stops taking tasks, lets running ones finish for JOB_SHUTDOWN_SECONDS,
hands the rest back to the queue (queued again, enqueued at once) and exits 0. A worker killed
outright loses nothing either: its tasks' leases expire and the sweeper hands them to another
worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api import metrics
from api.config import ServiceSettings
from api.jobs.runtime import JobRuntime
from api.persistence import StoreError, open_store
from api.tasks import TaskPipeline
from providers import ProvidersSettings, load_registry

__all__ = ["run_worker"]

log = logging.getLogger("api.jobs")


def _probe_app(runtime: JobRuntime, settings: ServiceSettings) -> web.Application:
    async def prometheus(_: web.Request) -> web.Response:
        depth = await runtime.depth()
        if depth is not None:
            metrics.JOBS_QUEUE_MESSAGES.set(depth)
        body = metrics.render()
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        if runtime.healthy():
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "failing"}, status=503)

    async def readyz(_: web.Request) -> web.Response:
        checks = {"database": "ok", "queue": "ok"}
        try:
            await runtime.store.ping()
        except StoreError:
            checks["database"] = "failed"
        assert settings.redis_url is not None
        redis: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2)
        try:
            await redis.ping()
        except (RedisError, OSError):
            checks["queue"] = "failed"
        finally:
            await redis.aclose()
        ready = all(value == "ok" for value in checks.values())
        return web.json_response(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status=200 if ready else 503,
        )

    app = web.Application()
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def run_worker(settings: ServiceSettings, providers_settings: ProvidersSettings) -> None:
    # Taskiq logs every message it executes at INFO: one line per task is ours to write.
    logging.getLogger("taskiq.receiver.receiver").setLevel(logging.WARNING)
    registry = load_registry(providers_settings)
    try:
        store = await open_store(settings.resolved_database_url, migrate=settings.migrate_on_start)
    except BaseException:
        await registry.aclose()
        raise
    pipeline = TaskPipeline(registry, store)
    runtime = JobRuntime(settings, store, pipeline, registry, role="worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(_probe_app(runtime, settings), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.worker_host, settings.worker_port)
        await site.start()
        await runtime.start()
        log.info(
            "worker %s ready: %d at once, lease %ss, probes on %s:%d",
            runtime.owner,
            settings.job_concurrency,
            settings.job_lease_seconds,
            settings.worker_host,
            settings.worker_port,
        )
        await stop.wait()
        log.info("stopping: running tasks finish or go back to the queue")
    finally:
        await runtime.aclose()
        await pipeline.aclose()
        await store.aclose()
        await registry.aclose()
        with contextlib.suppress(Exception):
            await runner.cleanup()
        metrics.mark_process_dead()
        log.info("worker stopped")
