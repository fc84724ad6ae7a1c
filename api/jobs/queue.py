"""The queue: Taskiq, with taskiq-redis's list broker, or Taskiq's in-memory broker.

The message is the task's id and nothing else (no key, no prompt): everything a worker needs is
in the task's row of the history. Delivery is at most once per message (BRPOP), and that is
enough because the history, not the queue, is the source of truth: a worker claims a task with a
guarded UPDATE under a lease, so a duplicate message is a no-op, and a lost one (a worker killed
with a message in hand, Redis restarted without persistence, an API killed between its commit and
its enqueue) is found by the sweeper, which enqueues again any task queued and not taken for
JOB_REQUEUE_SECONDS, or running with an expired lease. See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import AsyncBroker, InMemoryBroker
from taskiq_redis import ListQueueBroker

__all__ = ["JOB_TASK_NAME", "JobBroker", "QueueUnavailable", "make_broker", "queue_depth"]

log = logging.getLogger("api.jobs")

JOB_TASK_NAME: Final = "reasoning_agent.run_job"
_BRPOP_SECONDS: Final = 1  # how soon a stopping worker notices


class QueueUnavailable(Exception):
    """The queue (Redis) cannot be reached; the message is safe to show."""


class JobBroker(ListQueueBroker):
    """taskiq-redis's list broker, with a listener that waits out a Redis outage (backing off,
    logging once) instead of failing the receiver, and wakes every second so a stop is prompt."""

    async def listen(self) -> AsyncGenerator[bytes, None]:
        delay, down = 0.2, False
        while True:
            try:
                async with Redis(connection_pool=self.connection_pool) as conn:
                    popped = await conn.brpop([self.queue_name], timeout=_BRPOP_SECONDS)
            except (RedisError, OSError) as error:
                if not down:
                    log.warning("job queue unreachable (%s); retrying", type(error).__name__)
                    down = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if down:
                log.info("job queue reachable again")
                down, delay = False, 0.2
            if popped is not None:
                message = popped[1]
                yield message.encode() if isinstance(message, str) else message


def make_broker(redis_url: str | None, *, prefix: str, concurrency: int) -> AsyncBroker:
    if redis_url is None:
        return InMemoryBroker(max_async_tasks=concurrency, propagate_exceptions=False)
    return JobBroker(
        redis_url,
        queue_name=f"{prefix}:jobs:queue",
        max_connection_pool_size=concurrency + 16,
        socket_connect_timeout=2,
        socket_timeout=_BRPOP_SECONDS + 5,
        timeout=5,  # waiting for a connection of the pool
    )


async def queue_depth(broker: AsyncBroker) -> int | None:
    """Messages waiting in Redis (None for the in-memory broker or when Redis is down)."""
    if not isinstance(broker, ListQueueBroker):
        return None
    try:
        async with Redis(connection_pool=broker.connection_pool) as conn:
            return int(await conn.llen(broker.queue_name))
    except (RedisError, OSError):
        return None


def register(broker: AsyncBroker, run: Callable[[str], Awaitable[None]]) -> Any:
    """Registers the one task of the queue: run the background task with this id."""

    async def run_job(task_id: str) -> None:
        await run(task_id)

    return broker.register_task(run_job, task_name=JOB_TASK_NAME)
