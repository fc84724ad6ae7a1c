"""`reasoning-agent serve`: run the REST service with uvicorn.

Host, port and workers default to HOST, PORT and WORKERS (else 127.0.0.1, 8000, 1). The
configuration is checked before the server starts, so a missing API_KEYS or a bad RATE_LIMIT
is one clear line, not a traceback from every worker.

With several workers, metrics must be shared between processes: prometheus-client's
multiprocess mode keeps them in files under PROMETHEUS_MULTIPROC_DIR. This command points it at
a fresh temporary directory (removed at exit) unless the variable is already set, in which
case that directory is emptied of stale files first, as prometheus-client requires.

SIGTERM is the normal way to stop the service (`docker stop`, Kubernetes, systemd): uvicorn stops
accepting connections, lets the requests in flight finish, runs the app's shutdown and then
raises the signal again in its own process (`signal.raise_signal`, after restoring the handler
it found), so that the "default behaviour" of the signal happens. With Python's default
handler that default is death by SIGTERM, so after a clean drain the process exited 143
(128 + 15), and so did the container (tini passes its child's status on). This command installs
its own SIGTERM handler before uvicorn runs: the signal handed back after the drain lands there
and `serve` exits 0, the status orchestrators expect from a graceful stop. A SIGTERM before
uvicorn has taken over its signals (while the app is imported) stops the start the same way.
With several workers uvicorn's supervisor handles SIGTERM itself and returns normally.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

NAME = "serve"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONFIG_ENV = "REASONING_AGENT_CONFIG"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="run the REST service",
        description="Run the REST service (POST /task, GET /query, GET /metrics ...). "
        "Settings come from the environment: API_KEYS (required), RATE_LIMIT, REDIS_URL, "
        "DATABASE_URL, ... (docs/api.md).",
    )
    parser.add_argument("--host", help="address to bind (default: $HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $PORT, else 8000)")
    parser.add_argument("--workers", type=int, help="server processes (default: $WORKERS, else 1)")
    return parser


@contextlib.contextmanager
def _multiprocess_metrics(workers: int) -> Iterator[None]:
    """Sets up prometheus-client's multiprocess directory (before anything imports it)."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield
        return
    if workers <= 1:
        yield
        return
    directory = Path(tempfile.mkdtemp(prefix="reasoning-agent-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


class _StopRequested(Exception):
    """SIGTERM reached `serve`'s own handler: a requested stop, not a failure."""


def _stop_requested(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested


@contextlib.contextmanager
def _sigterm_stops_cleanly() -> Iterator[None]:
    """A SIGTERM that reaches this process's handler ends `serve` with exit status 0.

    uvicorn replaces the handler while it serves and restores it afterwards; it then re-raises
    the SIGTERM it got, which lands here once the requests in flight have finished.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; uvicorn then sets none either
        return
    previous = signal.signal(signal.SIGTERM, _stop_requested)
    try:
        yield
    except _StopRequested:
        logging.getLogger("api").info("stopped on SIGTERM")
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from api.config import load_service_settings
    from api.logging import configure_logging
    from providers import load_settings

    if args.config:
        os.environ[CONFIG_ENV] = args.config  # the workers read the same file
    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    settings = load_service_settings(**overrides)  # SettingsInvalid: printed as one error
    load_settings(args.config)  # ConfigError likewise, before any worker starts
    # Every worker builds its app from the environment: pass the command-line values on.
    os.environ.update({name.upper(): str(value) for name, value in overrides.items()})

    root = logging.getLogger()
    for handler in list(root.handlers):  # the CLI's plain handler: ours replaces it
        root.removeHandler(handler)
    configure_logging(settings.log_format, settings.log_level)
    with _sigterm_stops_cleanly(), _multiprocess_metrics(settings.workers):
        uvicorn.run(
            "api.main:app",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,  # our handler (api.logging) formats uvicorn's records too
            access_log=False,  # api.access logs each request with its route and request id
            timeout_graceful_shutdown=max(1, round(settings.graceful_shutdown_seconds)),
            server_header=False,
        )
    return 0
