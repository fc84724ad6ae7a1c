"""`Annotated` dependency aliases: what a route needs, by name.

The app's long-lived objects (settings, keys, limiter, provider registry, history store) live
on `app.state`, created by `create_app` and the lifespan; routes get them through these aliases.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.budgets import CURRENT_BUDGET, Ledger
from api.config import ServiceSettings
from api.persistence.records import TaskStore
from api.ratelimit import KeyRateLimitExceeded, RateLimiter
from api.security import Principal, authenticate_request, presented_key
from api.tasks import TaskPipeline
from providers import ProviderRegistry

__all__ = [
    "Admitted",
    "LimiterDep",
    "PipelineDep",
    "RegistryDep",
    "SettingsDep",
    "StoreDep",
    "admit",
    "admitted_principal",
]


# Async on purpose: FastAPI runs plain `def` dependencies in its threadpool, a thread hop per
# request for what is only an attribute read.
async def _settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


async def _registry(request: Request) -> ProviderRegistry:
    registry: ProviderRegistry = request.app.state.registry
    return registry


async def _store(request: Request) -> TaskStore:
    store: TaskStore = request.app.state.store
    return store


async def _pipeline(request: Request) -> TaskPipeline:
    pipeline: TaskPipeline = request.app.state.pipeline
    return pipeline


async def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


SettingsDep = Annotated[ServiceSettings, Depends(_settings)]
RegistryDep = Annotated[ProviderRegistry, Depends(_registry)]
StoreDep = Annotated[TaskStore, Depends(_store)]
LimiterDep = Annotated[RateLimiter, Depends(_limiter)]
PipelineDep = Annotated[TaskPipeline, Depends(_pipeline)]


async def admit(request: Request, presented_key: str | None) -> Principal:
    """Authenticates the caller, then counts the request against its key's budget.

    401 comes first: a request without a valid key never touches any key's budget.
    """
    principal = authenticate_request(request, presented_key)
    limiter: RateLimiter = request.app.state.limiter
    try:
        request.state.rate_limit = await limiter.hit(principal.key_id)
    except KeyRateLimitExceeded as exceeded:
        request.state.rate_limit = exceeded.state
        raise
    budgets: Ledger = request.app.state.budgets
    if budgets.enabled and budgets.budget_of(principal.key_id) is not None:
        # A budgeted key: its remaining spend on every response (`x-budget-remaining`), kept
        # current by the pipeline as it reserves and settles. Unbudgeted keys skip this.
        state = await budgets.remaining(principal.key_id)
        if state is not None:
            request.state.budget = state
            CURRENT_BUDGET.set(state)
    return principal


async def admitted_principal(request: Request) -> Principal:
    """The guard of every protected endpoint: one dependency that authenticates and admits
    (FastAPI runs it once per request even when the endpoint asks for the principal too). It
    reads both headers, X-API-Key and Authorization; `api.openapi` documents the two schemes."""
    return await admit(request, presented_key(request.headers))


Admitted = Annotated[Principal, Depends(admitted_principal)]
"""The authenticated, rate-limited caller."""
