"""The API key schemes in the OpenAPI document.

Every protected route is guarded by one dependency, `api.deps.admitted_principal`, which reads
both headers itself. Declaring the schemes as FastAPI security dependencies (`Security(...)`)
would document them, but FastAPI would also call each one on every request: two more calls
through its dependency solver on every route, for a document that never changes. So the
schemes are added to the document here, once, on the operations of the protected routers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute

from api.security import api_key_header, bearer_scheme

__all__ = ["document_key_schemes"]


def document_key_schemes(app: FastAPI, protected: Iterable[APIRouter]) -> None:
    """Makes `app.openapi()` declare both key schemes, as alternatives, on every operation of
    the `protected` routers (and on no other)."""
    operations = {
        (route.path, method.lower())
        for router in protected
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    schemes = {
        scheme.scheme_name: jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
        for scheme in (api_key_header, bearer_scheme)
    }
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(schemes)
            for path, item in schema.get("paths", {}).items():
                for method, operation in item.items():
                    if (path, method) in operations:
                        operation["security"] = [{name: []} for name in schemes]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
