"""`GET /healthz` and `GET /readyz`: probes for Docker and Kubernetes, open without a key.

They say nothing but status: no versions, no provider names, no error messages.
- `/healthz` (liveness) touches nothing: the process answers HTTP.
- `/readyz` (readiness) checks the history database, the rate-limit store and that the
  default provider can serve; 503 when one cannot.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import agent_core
from api.persistence.records import TaskStore
from api.ratelimit import RateLimiter
from providers import ProviderRegistry

__all__ = ["router"]

router = APIRouter(tags=["operations"])

CheckStatus = Literal["ok", "degraded", "failed"]
_CHECK_TIMEOUT = 2.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckStatus]


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health()


async def _database(store: TaskStore) -> CheckStatus:
    try:
        await asyncio.wait_for(store.ping(), _CHECK_TIMEOUT)
    except Exception:
        return "failed"
    return "ok"


async def _rate_limit_store(limiter: RateLimiter) -> CheckStatus:
    if await limiter.check():
        return "ok"
    # In memory-fallback mode the service still limits every request (per instance).
    return "degraded" if limiter.on_storage_down == "memory" else "failed"


def _default_provider(registry: ProviderRegistry) -> CheckStatus:
    try:
        registry.get(None)
    except agent_core.AgentError:
        return "failed"
    return "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"model": Readiness, "description": "A dependency cannot serve"}},
)
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    database, rate_limit_store = await asyncio.gather(
        _database(state.store), _rate_limit_store(state.limiter)
    )
    checks: dict[str, CheckStatus] = {
        "database": database,
        "rate_limit_store": rate_limit_store,
        "default_provider": _default_provider(state.registry),
    }
    ready = all(value != "failed" for value in checks.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
