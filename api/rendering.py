"""Responses rendered once.

A route that returns a pydantic model has FastAPI validate it again against its
`response_model` before serialising it: a second pass over a value the route has just built
from trusted data. The hot routes return `json_response(model)` instead; their decorators keep
`response_model` for the OpenAPI document, and FastAPI sends a returned `Response` as it is.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel
from starlette.responses import Response

__all__ = ["json_response"]


def json_response(
    model: BaseModel, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`model` as `application/json`, serialised by pydantic as FastAPI would (aliases on)."""
    return Response(
        model.model_dump_json(by_alias=True),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )
