"""The two busiest endpoints, `POST /task` and `POST /v1/chat/completions`, answered without
FastAPI's per-request machinery when the request is an ordinary one.

FastAPI stays the definition of these endpoints: their routes, OpenAPI documents and error
answers are FastAPI's. What it costs per request is the route's generality: a parse of the
Content-Type with `email.message`, a dependency solver, an exit stack per request, several layers
of routing for included routers. Measured with callgrind on `POST /task` at concurrency 16 (in
process, against the mock upstream), that was 16 % of a request's instructions.

A `HotRoute` sits first in the app's routes. For a POST to its path it reads the body and, when
the body is JSON (`Content-Type: application/json`) that validates against the endpoint's body
model, calls the same endpoint function FastAPI would, with the same arguments: the parsed body,
the request, and the principal from the same admission (`admitted_principal`). Errors it raises
reach the app's exception handlers exactly as FastAPI's would. Anything else (another content
type, a body that is not JSON or not valid, dependency overrides in place) is handed back,
body and all, to FastAPI's own route, which answers it as it always did: the hot path only
ever answers requests on which both paths agree.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, get_type_hints

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Message, Receive, Scope, Send

from api.deps import admitted_principal
from api.security import Principal

__all__ = ["HOT_PATH", "HotRoute", "install_hot_routes"]

Endpoint = Callable[[Any, Request, Principal], Awaitable[Response]]

# Media types taken on the hot path as they are written; any other spelling (parameters other
# than charset=utf-8, `+json` types) takes FastAPI's route, which parses the header in full.
_JSON_TYPES = frozenset(
    {
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=utf-8",
        "application/json; charset=UTF-8",
    }
)

# In the request's scope: "answered" or "declined" (then FastAPI's route answered it).
HOT_PATH = "reasoning_agent.hot_path"


class HotRoute(BaseRoute):
    """`POST path` through `endpoint(body, request, principal)`, else FastAPI's route."""

    def __init__(self, app: FastAPI, api_route: APIRoute, body_model: type[BaseModel]) -> None:
        self.app = app
        self.api_route = api_route  # in scope["route"]: the access log's and metrics' template
        self.path = self.path_format = api_route.path
        self.body_model = body_model
        self.endpoint: Endpoint = api_route.endpoint

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and HOT_PATH not in scope
            and get_route_path(scope) == self.path
        ):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)  # FastAPI's own route answers to its name

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.api_route
        request = Request(scope, receive, send)
        try:
            raw = await request.body()
        except HTTPException:  # the body cap (api.middleware): answered by the app's handler
            raise
        except Exception:  # as FastAPI answers a body it could not read
            raise HTTPException(400, "There was an error parsing the body") from None
        body = self._parse(request, raw)
        if body is None:
            await self._decline(scope, raw, receive, send)
            return
        scope[HOT_PATH] = "answered"
        principal = await admitted_principal(request)
        response = await self.endpoint(body, request, principal)
        await response(scope, receive, send)

    def _parse(self, request: Request, raw: bytes) -> BaseModel | None:
        """The body model, parsed and validated as FastAPI does (`json.loads`, then the model in
        Python mode), or None for anything the hot path leaves to FastAPI."""
        if not raw or self.app.dependency_overrides:
            return None
        # Read as FastAPI reads it (the first Content-Type header), then compared as written.
        if request.headers.get("content-type") not in _JSON_TYPES:
            return None
        try:
            return self.body_model.model_validate(json.loads(raw))
        except Exception:  # not JSON, not valid, nested too deep ...: FastAPI says which
            return None

    async def _decline(self, scope: Scope, raw: bytes, receive: Receive, send: Send) -> None:
        """FastAPI's routing from the top, with the body already read given back first."""
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        scope[HOT_PATH] = "declined"
        await self.app.router.app(scope, replay, send)


def install_hot_routes(app: FastAPI, endpoints: Sequence[tuple[APIRouter, Endpoint]]) -> None:
    """Puts a `HotRoute` first in the app for each `(router, endpoint)`: the POST route of
    `endpoint` in `router`, which the app already includes. The body model is the one the
    endpoint declares for its `body` parameter, the model FastAPI validates against."""
    hot: list[BaseRoute] = []
    for router, endpoint in endpoints:
        api_route = next(
            route
            for route in router.routes
            if isinstance(route, APIRoute) and route.endpoint is endpoint
        )
        body_model = get_type_hints(endpoint)["body"]
        if not (isinstance(body_model, type) and issubclass(body_model, BaseModel)):
            raise TypeError(f"{endpoint.__name__}'s body is not a pydantic model")
        hot.append(HotRoute(app, api_route, body_model))
    app.router.routes[0:0] = hot
