"""The built-in providers' `options` (`[providers.NAME.options]`), typed and bounded.

`options` is free-form for plugins, but the built-in providers read numbers from it (pool
size, retry delays, echo's latency): each is declared here once, with its range, and a wrong
value makes the provider fail to be created with a one-line reason naming the option
(`reasoning-agent providers` shows it), never a surprise at request time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from providers.transport.lean import DEFAULT_MAX_CONNECTIONS

__all__ = ["EchoOptions", "UpstreamOptions", "read_options"]


class _Options(BaseModel):
    # Other keys are provider-specific (`project`, `anthropic_version`, ...) and pass through.
    model_config = ConfigDict(extra="allow", frozen=True)


class UpstreamOptions(_Options):
    """Options of the HTTP providers (openai, anthropic, openai_compatible)."""

    max_connections: int = Field(default=DEFAULT_MAX_CONNECTIONS, ge=1, le=100_000)
    retry_initial_delay: float = Field(default=0.5, gt=0, le=60)  # the SDKs' own defaults
    retry_max_delay: float = Field(default=8.0, gt=0, le=600)
    retry_after_cap: float = Field(default=60.0, ge=0, le=3600)


class EchoOptions(_Options):
    latency: float = Field(default=0.0, ge=0, le=600, description="seconds each answer waits")


OptionsT = TypeVar("OptionsT", bound=_Options)


def read_options(model: type[OptionsT], options: Mapping[str, Any]) -> OptionsT:
    """`options` checked against `model`; a ValueError naming each bad option otherwise."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as error:
        problems = "; ".join(
            f"options.{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        raise ValueError(problems) from None
