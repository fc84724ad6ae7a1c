"""`reasoning-agent worker`: run background tasks from the Redis queue.

Settings come from the environment like the server's (REDIS_URL and DATABASE_URL are required
in practice: the queue and the history the API shares); JOB_CONCURRENCY tasks run at once.
Workers need no API key: the queue carries task ids, and the history the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

NAME = "worker"


class WorkerConfigError(Exception):
    code = "config_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="run background tasks from the queue",
        description="Run background tasks (POST /task with background) from the Redis queue. "
        "Needs REDIS_URL and the API's DATABASE_URL; JOB_CONCURRENCY, JOB_LEASE_SECONDS, "
        "WORKER_PORT, ... (docs/api.md).",
    )
    parser.add_argument("--concurrency", type=int, help="tasks at once (default $JOB_CONCURRENCY)")
    parser.add_argument("--port", type=int, help="metrics and probes port (default $WORKER_PORT)")
    return parser


def run(args: argparse.Namespace) -> int:
    from api.config import load_service_settings
    from api.jobs.worker import run_worker
    from api.logging import configure_logging
    from providers import load_settings

    overrides: dict[str, Any] = {
        name: value
        for name, value in (("job_concurrency", args.concurrency), ("worker_port", args.port))
        if value is not None
    }
    if not os.environ.get("API_KEYS") and not os.environ.get("ADMIN_API_KEYS"):
        overrides["api_keys"] = ["worker-serves-no-api"]  # a worker authenticates nobody
    settings = load_service_settings(**overrides)
    if settings.redis_url is None:
        raise WorkerConfigError(
            "REDIS_URL is not set: workers take tasks from the Redis queue (without Redis, "
            "`reasoning-agent serve` runs background tasks itself)"
        )
    providers_settings = load_settings(args.config)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(run_worker(settings, providers_settings))
    return 0
