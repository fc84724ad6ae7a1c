"""The request middleware: request id, body cap, metrics, access log, rate-limit headers, and
the last-resort 500. Pure ASGI (no BaseHTTPMiddleware): it adds no task or copy per request.

It sits outside FastAPI's exception handling, so it sees every response, including errors,
and can stamp each with `X-Request-ID` and the caller's `x-ratelimit-*` headers.

The body cap is ours rather than FastAPI's `max_body_size`: FastAPI answers some oversized
requests with a plain-text 413 from outside the app's middleware, and every error here must
have the one JSON shape (and a request id).
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from api.budgets import BudgetState
from api.errors import error_response
from api.logging import REQUEST_ID
from api.ratelimit import RateLimitState

__all__ = ["BodyTooLarge", "RequestContextMiddleware"]

access_log = logging.getLogger("api.access")
error_log = logging.getLogger("api.error")

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"


class BodyTooLarge(StarletteHTTPException):
    """Raised while reading a body past the cap (FastAPI re-raises HTTPExceptions as they are,
    so the app's handler answers it in the JSON shape)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


def _read_headers(scope: Scope) -> tuple[str, int | None]:
    """The request id (the caller's, if well-formed, so traces join up; else a fresh one) and
    the declared Content-Length, in one pass over the raw headers (ASGI lowercases names)."""
    incoming: bytes | None = None
    length: bytes | None = None
    for name, value in scope["headers"]:  # the first of each counts, as Headers.get does
        if name == b"x-request-id" and incoming is None:
            incoming = value
        elif name == b"content-length" and length is None:
            length = value
    request_id = incoming.decode("latin-1") if incoming is not None else None
    if request_id is None or not _VALID_REQUEST_ID.match(request_id):
        request_id = os.urandom(16).hex()
    try:
        declared = int(length) if length is not None else None
    except ValueError:
        declared = None
    return request_id, declared


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id, declared = _read_headers(scope)
        token = REQUEST_ID.set(request_id)
        state: dict[str, Any] = scope.setdefault("state", {})
        started = time.perf_counter()
        state["request_id"] = request_id
        state["started"] = started
        status = 500
        response_started = False
        limit = self.max_body_bytes

        async def send_with_context(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                budget = state.get("rate_limit")
                if isinstance(budget, RateLimitState):
                    for name, value in budget.headers().items():
                        if name not in headers:  # an upstream's Retry-After is kept
                            headers[name] = value
                spend = state.get("budget")
                if isinstance(spend, BudgetState):
                    headers.update(spend.headers())
            await send(message)

        received = 0

        async def receive_with_cap() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        metrics.HTTP_IN_FLIGHT.inc()
        try:
            if declared is not None and declared > limit:
                # Refused before reading a byte of it.
                response = error_response(
                    413,
                    f"request body larger than {limit} bytes",
                    type="invalid_request_error",
                    code="request_too_large",
                )
                await response(scope, receive, send_with_context)
                return
            await self.app(scope, receive_with_cap, send_with_context)
        except Exception:
            # An error no handler anticipated: logged in full (redacted), answered generically.
            error_log.exception("unhandled error answering %s %s", scope["method"], scope["path"])
            if response_started:
                raise
            response = error_response(
                500,
                f"internal error; quote request id {request_id} when reporting it",
                type="server_error",
                code="internal_error",
                request_id=request_id,
            )
            await response(scope, receive, send_with_context)
        finally:
            metrics.HTTP_IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            metrics.observe_http(route, method, status, elapsed)
            principal = state.get("principal")
            access_log.info(
                "%s %s %d %.1fms",
                method,
                scope["path"],
                status,
                elapsed * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "key_id": getattr(principal, "key_id", None),
                },
            )
            REQUEST_ID.reset(token)
