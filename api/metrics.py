"""Prometheus metrics (prometheus-client), correct with several worker processes.

With `PROMETHEUS_MULTIPROC_DIR` set (as `reasoning-agent serve --workers N` does for N > 1)
prometheus-client keeps every process's values in files there, and `/metrics` aggregates them
all, whichever worker answers the scrape. The variable must be set before this module is
imported: prometheus-client chooses its storage at import time.

No metric carries a per-key label: keys are unbounded, and a key id in a label would be one
series per client. Model names come from clients, so their label values are capped too.
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

import agent_core

__all__ = ["CONTENT_TYPE_LATEST", "model_label", "observe_task", "render"]

NAMESPACE = "reasoning_agent"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Latency buckets (seconds) from a 1 ms mock upstream to a multi-call reasoning task.
_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
    namespace=NAMESPACE,
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method",
    ["route", "method"],
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "HTTP requests being answered now",
    namespace=NAMESPACE,
    multiprocess_mode="livesum",
)
TASKS = Counter(
    "tasks",
    "Tasks run, by provider, model, strategy and outcome (succeeded, or the error code)",
    ["provider", "model", "strategy", "outcome"],
    namespace=NAMESPACE,
)
TASK_LATENCY = Histogram(
    "task_duration_seconds",
    "Time to run a task (all its provider calls), by provider and strategy",
    ["provider", "strategy"],
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
PROVIDER_CALL_LATENCY = Histogram(
    "provider_call_duration_seconds",
    "Latency of single provider calls (from the task traces), by provider, model and outcome",
    ["provider", "model", "outcome"],
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
TOKENS = Counter(
    "tokens",
    "Tokens spent, by provider, model and kind (prompt, completion)",
    ["provider", "model", "kind"],
    namespace=NAMESPACE,
)
UPSTREAM_ERRORS = Counter(
    "upstream_errors",
    "Provider failures by provider and kind (timeout, unavailable, rate_limited, ...)",
    ["provider", "kind"],
    namespace=NAMESPACE,
)
RATE_LIMIT_REJECTIONS = Counter(
    "rate_limit_rejections",
    "Requests refused with 429 by the per-key rate limit",
    namespace=NAMESPACE,
)
RATE_LIMIT_STORAGE_DOWN = Counter(
    "rate_limit_storage_down",
    "Requests limited while the shared rate-limit store was unreachable, by mode "
    "(memory: limited per instance; reject: refused with 503)",
    ["mode"],
    namespace=NAMESPACE,
)
RATE_LIMIT_STORAGE_PROBES = Counter(
    "rate_limit_storage_probes",
    "Probes of the shared rate-limit store while it was down, by outcome (ok: shared limits "
    "resumed; failed)",
    ["outcome"],
    namespace=NAMESPACE,
)
AUTH_FAILURES = Counter(
    "auth_failures",
    "Requests refused with 401, by reason (missing, invalid, conflicting)",
    ["reason"],
    namespace=NAMESPACE,
)
HISTORY_WRITE_LATENCY = Histogram(
    "history_write_duration_seconds",
    "Time to commit a task record to the history store",
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
COST = Counter(
    "cost_usd",
    "What provider calls cost at the price table, US dollars (calls of unknown price: none)",
    ["provider", "model"],
    namespace=NAMESPACE,
)
# Budgets: never labelled by key (a label per key id would grow without bound).
BUDGET_REFUSALS = Counter(
    "budget_refusals",
    "Tasks of budgeted keys refused: exhausted (402), unpriced (400), unavailable (503)",
    ["reason"],
    namespace=NAMESPACE,
)
BUDGET_SPEND = Counter(
    "budget_spend_usd",
    "Spend settled against per-key budgets, all keys together, US dollars",
    namespace=NAMESPACE,
)
STREAM_FIRST_EVENT = Histogram(
    "stream_first_event_seconds",
    "Time from a streamed request's arrival to its first event, by entry point",
    ["face"],
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
STREAM_DURATION = Histogram(
    "stream_duration_seconds",
    "How long a streamed task's response lasted, by entry point and how it ended",
    ["face", "outcome"],
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
BUILD_INFO = Gauge(
    "build_info",
    "Build information (always 1)",
    ["version", "agent_core_version", "python_version"],
    namespace=NAMESPACE,
    multiprocess_mode="max",
)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reasoning-agent")
    except PackageNotFoundError:
        return "unknown"


BUILD_INFO.labels(
    version=_package_version(),
    agent_core_version=agent_core.__version__,
    python_version=platform.python_version(),
).set(1)


# --- bounded label values ---------------------------------------------------------------------

_MAX_MODELS = 50
_models: set[str] = set()
_models_lock = threading.Lock()


def model_label(model: str | None) -> str:
    """The model's name as a label value; past 50 distinct names, `other` (clients choose
    model names, and each would otherwise be a new series forever)."""
    if not model:
        return "default"
    with _models_lock:
        if model in _models:
            return model
        if len(_models) < _MAX_MODELS:
            _models.add(model)
            return model
    return "other"


# --- bound children ---------------------------------------------------------------------------

_children: dict[tuple[int, tuple[str, ...]], Any] = {}
_MAX_CHILDREN = 10_000  # label values are bounded (routes, models via model_label); a cap anyway


def child(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, bound once and reused: `labels()` validates the values, takes a
    lock and builds its key on every call, a measurable share of a request's CPU."""
    key = (id(metric), values)
    try:
        return _children[key]
    except KeyError:
        bound = metric.labels(*values)
        if len(_children) < _MAX_CHILDREN:
            _children[key] = bound
        return bound


def observe_http(route: str, method: str, status: int, seconds: float) -> None:
    """One answered HTTP request: its count and its latency."""
    child(HTTP_REQUESTS, route, method, str(status)).inc()
    child(HTTP_LATENCY, route, method).observe(seconds)


# --- exposition -------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render() -> bytes:
    """The Prometheus text exposition of every process's metrics."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def mark_process_dead() -> None:
    """At a worker's exit: its live gauges (in-flight requests) stop counting."""
    if multiprocess_dir():
        prometheus_multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


# --- recording a task -------------------------------------------------------------------------

# Error codes that mean "the provider failed" (not "the request was wrong").
UPSTREAM_KINDS = frozenset(
    {"rate_limited", "timeout", "unavailable", "authentication_failed", "provider_error"}
)


def observe_task(
    *,
    provider: str,
    model: str | None,
    strategy: str,
    outcome: str,
    seconds: float,
    steps: list[agent_core.Step] | None = None,
) -> None:
    """Counts one task, and each provider call of its trace (latency, tokens, errors)."""
    child(TASKS, provider, model_label(model), strategy, outcome).inc()
    child(TASK_LATENCY, provider, strategy).observe(seconds)
    # Upstream errors are counted per failed call; a task that failed without a failed call in
    # its trace (none was made) counts once here.
    if outcome in UPSTREAM_KINDS and not any(step.error for step in steps or ()):
        UPSTREAM_ERRORS.labels(provider=provider, kind=outcome).inc()
    for step in steps or ():
        step_provider = step.provider or provider
        step_model = model_label(step.model or model)
        child(
            PROVIDER_CALL_LATENCY, step_provider, step_model, "error" if step.error else "ok"
        ).observe(step.latency_ms / 1000)
        if step.error:
            UPSTREAM_ERRORS.labels(provider=step_provider, kind=step.error).inc()
        usage = step.usage
        if usage.prompt_tokens:
            child(TOKENS, step_provider, step_model, "prompt").inc(usage.prompt_tokens)
        if usage.completion_tokens:
            child(TOKENS, step_provider, step_model, "completion").inc(usage.completion_tokens)


# --- background tasks (the API's and the workers' /metrics) -----------------------------------

JOBS_QUEUED = Gauge(
    "jobs_queued",
    "Background tasks queued (the queue depth), as the history counts them",
    namespace=NAMESPACE,
    multiprocess_mode="max",
)
JOBS_RUNNING = Gauge(
    "jobs_running",
    "Background tasks running in this process",
    namespace=NAMESPACE,
    multiprocess_mode="livesum",
)
JOBS_SUBMITTED = Counter(
    "jobs_submitted",
    "Background tasks accepted (202)",
    namespace=NAMESPACE,
)
JOBS_FINISHED = Counter(
    "jobs_finished",
    "Background tasks ended, by status (succeeded, failed, cancelled)",
    ["status"],
    namespace=NAMESPACE,
)
JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Run time of a background task's attempt, by how it ended",
    ["outcome"],
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
JOB_QUEUE_WAIT = Histogram(
    "job_queue_wait_seconds",
    "Time from acceptance to a worker's claim",
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
JOB_RETRIES = Counter(
    "job_retries",
    "Background tasks put back on the queue, by reason (retry, handback, rerun, requeue)",
    ["reason"],
    namespace=NAMESPACE,
)
JOB_CALLBACKS = Counter(
    "job_callbacks",
    "Callback deliveries, by outcome (delivered, failed, retried)",
    ["outcome"],
    namespace=NAMESPACE,
)
JOBS_QUEUE_MESSAGES = Gauge(
    "jobs_queue_messages",
    "Messages waiting on the Redis queue (duplicates included)",
    namespace=NAMESPACE,
    multiprocess_mode="max",
)
