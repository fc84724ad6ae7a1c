"""`GET /providers`: the registered providers, their status and default models."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

import agent_core
from api.deps import RegistryDep

__all__ = ["router"]

router = APIRouter(tags=["providers"])


class ProviderOut(BaseModel):
    name: str
    type: str = Field(description="The registered provider type it is an instance of")
    status: Literal["available", "missing_credentials", "failed", "disabled"]
    reason: str | None = Field(description="Why it cannot serve (never a secret)")
    default_model: str | None
    aliases: list[str]
    plugin: str | None = Field(description="The plugin that provides it")


class ProvidersOut(BaseModel):
    object: Literal["list"] = "list"
    default_provider: str = Field(description="Serves requests that name no provider")
    default_strategy: str
    strategies: list[str] = Field(description="Strategies a task may name")
    data: list[ProviderOut]


@router.get("/providers", response_model=ProvidersOut, summary="Registered providers")
async def list_providers(registry: RegistryDep) -> ProvidersOut:
    return ProvidersOut(
        default_provider=registry.default_name,
        default_strategy=registry.settings.default_strategy,
        strategies=agent_core.strategies(),
        data=[ProviderOut.model_validate(status.as_dict()) for status in registry.statuses()],
    )
