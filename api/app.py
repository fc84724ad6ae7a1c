"""The FastAPI application factory (`api.main` builds the process's app from the environment).

`create_app()` builds the app from settings (tests pass their own); the lifespan opens the
long-lived resources (rate-limit storage, provider registry, history store) and closes them at
shutdown, after uvicorn has let in-flight requests finish.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

import agent_core
from api import console, metrics
from api.budgets import Ledger
from api.config import ServiceSettings, get_settings
from api.deps import admit, admitted_principal
from api.errors import ERROR_RESPONSES, install_error_handlers
from api.hot_path import install_hot_routes
from api.jobs.runtime import JobRuntime, Role
from api.logging import configure_logging
from api.middleware import RequestContextMiddleware
from api.openapi import document_key_schemes
from api.persistence import open_store, parse_database_url
from api.ratelimit import RateLimiter
from api.redaction import register_secrets
from api.routes import health, jobs, providers, query, task, v1
from api.routes import metrics as metrics_routes
from api.security import KeyRing, presented_key
from api.tasks import TaskPipeline
from providers import ProviderRegistry, ProvidersSettings, load_registry, load_settings

__all__ = ["create_app"]

log = logging.getLogger("api")

DESCRIPTION = """\
Submit prompts to a reasoning agent over several LLM providers, and query the history.

Every endpoint but `/healthz` and `/readyz` needs an API key, in the `X-API-Key` header or as
`Authorization: Bearer <key>` (what the OpenAI SDKs send), and is rate-limited per key (one
budget across all endpoints; `x-ratelimit-limit`, `x-ratelimit-remaining` and
`x-ratelimit-reset` (seconds) on every response). Errors have one shape:
`{"error": {"message", "type", "code"}}`. `/v1/chat/completions` and `/v1/models` speak
OpenAI's API, so the official SDKs and the tools built on them work unchanged.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServiceSettings = app.state.settings
    limiter: RateLimiter = app.state.limiter
    budgets: Ledger = app.state.budgets
    await limiter.start()
    await budgets.start()
    registry = load_registry(app.state.providers_settings)
    try:
        store = await open_store(settings.resolved_database_url, migrate=settings.migrate_on_start)
    except BaseException:
        await registry.aclose()
        await budgets.aclose()
        await limiter.aclose()
        raise
    app.state.registry = registry
    app.state.store = store
    app.state.pipeline = pipeline = TaskPipeline(
        registry, store, budgets if budgets.enabled else None
    )
    # Background tasks: with REDIS_URL on the shared queue (workers run them); without, here.
    role: Role = "api" if settings.redis_url else "embedded"
    app.state.jobs = runtime = JobRuntime(settings, store, pipeline, registry, role=role)
    await runtime.start()
    _log_startup(settings, registry, limiter)
    _freeze_startup_objects()
    try:
        yield
    finally:
        await runtime.aclose()  # running background tasks finish or go back to the queue
        await pipeline.aclose()  # cancelled tasks finish recording
        await store.aclose()  # queued history writes finish first
        await registry.aclose()
        await budgets.aclose()  # after the pipeline: cancelled tasks settle their spend first
        await limiter.aclose()
        metrics.mark_process_dead()


def _freeze_startup_objects() -> None:
    """Moves everything made so far (modules, the app, its settings, the providers) out of
    the garbage collector's view: they live as long as the process, and a full collection
    scanning the ~140,000 of them took ~100 ms, a pause every request in flight waited out (the
    tail at concurrency 16 was several times the median). It also keeps forked workers' pages
    shared (the CPython docs' advice for `gc.freeze`). Once per process: a process that builds
    many apps (the tests) would otherwise pay a full collection for each and keep every one.
    It also sets the young generation's threshold (below)."""
    global _startup_frozen
    if _startup_frozen:
        return
    _startup_frozen = True
    gc.collect()
    gc.freeze()
    # Requests in flight hold thousands of short-lived objects, freed by reference counting
    # when they end; at the default threshold (700 more objects alive than before) the young
    # generation was collected again and again, walking those objects each time. 10,000 cut
    # ~2.4 % of the instructions per request (callgrind, /task at concurrency 16); the older
    # generations keep their ratios to it.
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)


_startup_frozen = False
YOUNG_GC_THRESHOLD = 10_000


def _log_startup(
    settings: ServiceSettings, registry: ProviderRegistry, limiter: RateLimiter
) -> None:
    default = registry.status(None)
    log.info(
        "ready: default provider %s (%s), rate limit %s per key (%s), history %s",
        default.name,
        default.status,
        settings.rate_limit,
        "redis" if limiter.uses_redis else "memory",
        parse_database_url(settings.resolved_database_url).safe(),
    )
    if default.status != "available":
        log.warning(
            "the default provider %r cannot serve (%s): requests that name no provider get "
            "503 not_configured. The offline provider is always there: send "
            '"provider": "echo", or set REASONING_AGENT_DEFAULT_PROVIDER=echo',
            default.name,
            default.reason,
        )
    if settings.workers > 1 and not limiter.uses_redis:
        log.warning(
            "%d workers with in-memory rate limits: each worker keeps its own budget; "
            "set REDIS_URL to share one",
            settings.workers,
        )


def _docs_router(app: FastAPI) -> APIRouter:
    """/docs and /openapi.json behind the key (PUBLIC_DOCS=true serves them openly)."""
    router = APIRouter(dependencies=[Depends(admitted_principal)], include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi_schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    return router


def create_app(
    settings: ServiceSettings | None = None,
    providers_settings: ProvidersSettings | None = None,
) -> FastAPI:
    """Builds the app. Settings default to the environment (and plugins.toml).

    :raises api.config.SettingsInvalid: a service variable is wrong (e.g. no API key).
    :raises providers.ConfigError: the providers' configuration is wrong.
    """
    settings = settings if settings is not None else get_settings()
    providers_settings = providers_settings if providers_settings is not None else load_settings()
    configure_logging(settings.log_format, settings.log_level)
    register_secrets([*settings.api_keys, *settings.admin_api_keys])
    if settings.callback_secret is not None:
        register_secrets([settings.callback_secret.get_secret_value()])

    public_docs = settings.public_docs
    app = FastAPI(
        title="ReasoningAgent",
        version=agent_core.__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url="/docs" if public_docs else None,
        openapi_url="/openapi.json" if public_docs else None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.providers_settings = providers_settings
    app.state.keyring = KeyRing(settings)
    app.state.limiter = RateLimiter(settings)
    app.state.budgets = Ledger.from_settings(settings)

    async def admission(request: Request) -> object:
        return await admit(request, presented_key(request.headers))

    app.state.admission = admission
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)

    # Each router is included in the app itself, not through a shared "protected" router:
    # FastAPI matches a request level by level through included routers, and one level less
    # was a measurable share of a request's CPU. The busiest routes come first.
    protected = (
        task.router,
        v1.router,
        jobs.router,
        query.router,
        providers.router,
        metrics_routes.router,
    )
    for router in protected:
        app.include_router(
            router, dependencies=[Depends(admitted_principal)], responses=ERROR_RESPONSES
        )
    document_key_schemes(app, protected)
    # The two busiest endpoints answer ordinary requests without FastAPI's per-request work.
    install_hot_routes(
        app,
        [(task.router, task.run_task), (v1.router, v1.chat_completions)],
    )
    app.include_router(health.router)
    if not public_docs:
        app.include_router(_docs_router(app))
    if settings.console:
        app.include_router(console.router)  # the web console: public static files, no data
    return app
