"""One JSON error shape for every failure: `{"error": {"message", "type", "code"}}`.

It is OpenAI's shape, which clients already parse. `code` is stable and machine-readable;
`type` groups codes; `message` is for people and never holds a stack trace or a secret. The
table of every status and code is in docs/api.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from slowapi.errors import RateLimitExceeded
from starlette.exceptions import HTTPException as StarletteHTTPException

import agent_core
from api import metrics
from api.redaction import redact

__all__ = [
    "ERROR_RESPONSES",
    "APIError",
    "ErrorBody",
    "ErrorDetail",
    "agent_error_message",
    "agent_error_status",
    "error_response",
    "install_error_handlers",
]


class ErrorDetail(BaseModel):
    message: str = Field(description="What went wrong, for people")
    type: str = Field(description="The error's family, e.g. invalid_request_error")
    code: str = Field(description="Stable machine-readable code, e.g. rate_limit_exceeded")
    request_id: str | None = Field(
        default=None, description="Present on internal errors: quote it when reporting"
    )


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class APIError(Exception):
    """An error the service answers with on purpose."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str,
        code: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.type = type
        self.code = code
        self.headers = dict(headers or {})


def error_response(
    status_code: int,
    message: str,
    *,
    type: str,
    code: str,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    detail: dict[str, Any] = {"message": redact(message), "type": type, "code": code}
    if request_id is not None:
        detail["request_id"] = request_id
    return JSONResponse({"error": detail}, status_code=status_code, headers=dict(headers or {}))


# --- agent (upstream) errors ------------------------------------------------------------------

# code -> (HTTP status, type). Upstream failures are the gateway's 5xx family: the client's
# request was fine, the provider behind us was not.
_AGENT_ERRORS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    # the task cannot be done within the budget the client gave: the request is unprocessable
    # as given (402 would read as a billing problem to most clients)
    "budget_exceeded": (422, "invalid_request_error"),
    # the task's own deadline passed with no answer yet: a gateway timeout of the client's
    # choosing
    "deadline_exceeded": (504, "timeout_error"),
    # the provider exists but is missing its configuration (e.g. its API key) on this server:
    # nothing the client can fix by retrying, but another provider may serve
    "not_configured": (503, "provider_not_configured"),
    "rate_limited": (503, "upstream_error"),
    "timeout": (504, "upstream_error"),
    "unavailable": (502, "upstream_error"),
    "authentication_failed": (502, "upstream_error"),  # the provider rejected *our* credentials
    "provider_error": (502, "upstream_error"),
}


def agent_error_status(error: agent_core.AgentError) -> tuple[int, str, str]:
    """(status, type, code) for an engine or provider error."""
    code = str(getattr(error, "code", "provider_error"))
    status, kind = _AGENT_ERRORS.get(code, (502, "upstream_error"))
    return status, kind, code


# 5xx that no retry can fix until an operator acts. The OpenAI SDKs retry every 5xx twice by
# default, each retry a new task; they obey `x-should-retry: false`.
_NOT_RETRYABLE = frozenset({"not_configured", "authentication_failed"})


def agent_error_headers(error: agent_core.AgentError) -> dict[str, str]:
    retry_after = error.retry_after
    code = getattr(error, "code", None)
    if code == "rate_limited":
        # Always tell the client when to come back; the upstream's hint when it gave one.
        seconds = max(1, round(retry_after)) if retry_after is not None else 1
        return {"Retry-After": str(seconds)}
    if code in _NOT_RETRYABLE:
        return {"x-should-retry": "false"}
    return {}


def agent_error_message(error: agent_core.AgentError) -> str:
    text = error.message or str(error)
    if error.code == "authentication_failed":
        return "the upstream provider rejected this service's credentials"
    return text or "the upstream provider failed"


# --- handlers ---------------------------------------------------------------------------------

_HTTP_CODES = {
    400: ("bad_request", "invalid_request_error"),
    401: ("unauthorized", "authentication_error"),
    404: ("not_found", "not_found_error"),
    405: ("method_not_allowed", "invalid_request_error"),
    413: ("request_too_large", "invalid_request_error"),
    415: ("unsupported_media_type", "invalid_request_error"),
}


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    return error_response(
        exc.status_code, exc.message, type=exc.type, code=exc.code, headers=exc.headers
    )


# FastAPI's answer when reading a JSON body fails other than by a syntax error (which it reports
# as a validation error): bytes that are not UTF-8, nesting deeper than the parser's recursion
# limit, a number with more digits than Python converts. Each is a body that is not usable JSON.
_FASTAPI_BODY_ERROR = "There was an error parsing the body"


def _unusable_json_message(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "the request body is not valid JSON: it is not UTF-8 text"
    if isinstance(cause, RecursionError):
        return "the request body is not valid JSON: it is nested too deeply"
    return "the request body is not valid JSON"


def _invalid_json(message: str) -> JSONResponse:
    return error_response(400, message, type="invalid_request_error", code="invalid_json")


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _FASTAPI_BODY_ERROR:
        refused = await _refused_admission(request)
        return refused or _invalid_json(_unusable_json_message(exc.__cause__))
    code, kind = _HTTP_CODES.get(exc.status_code, ("http_error", "invalid_request_error"))
    if exc.status_code == 404:
        message = "not found"
    elif exc.status_code == 405:
        message = "method not allowed"
    else:
        message = str(exc.detail)
    return error_response(
        exc.status_code, message, type=kind, code=code, headers=dict(exc.headers or {})
    )


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """`body.prompt: String should have at least 1 character; ...` (input values never quoted)."""
    parts = []
    for problem in errors:
        loc = ".".join(str(part) for part in problem.get("loc", ()))
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts) or "invalid request"


Admission = Callable[[Request], Awaitable[object]]


def _body_not_sent_as_json(errors: Sequence[Any]) -> bool:
    """FastAPI parses a body as JSON only when its Content-Type says JSON; any other body
    reaches validation as raw bytes, which no JSON model accepts."""
    return any(
        tuple(problem.get("loc", ())) == ("body",) and isinstance(problem.get("input"), bytes)
        for problem in errors
    )


async def _refused_admission(request: Request) -> JSONResponse | None:
    """FastAPI reads and parses a body before it runs dependencies, so a malformed body arrives
    at its handler unauthenticated: authenticate and count the request first, so that a request
    without a valid key always gets 401, and a limited key 429, whatever its body. None: the
    caller is admitted (or the app has no admission)."""
    admission: Admission | None = getattr(request.app.state, "admission", None)
    if admission is None or getattr(request.state, "principal", None) is not None:
        return None
    try:
        await admission(request)
    except APIError as error:
        return await _api_error(request, error)
    except RateLimitExceeded as error:
        return await _rate_limited(request, error)
    return None


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    refused = await _refused_admission(request)
    if refused is not None:
        return refused
    errors = list(exc.errors())
    if any(problem.get("type") == "json_invalid" for problem in errors):
        return _invalid_json("the request body is not valid JSON")
    if _body_not_sent_as_json(errors):
        return error_response(
            415,
            "the request body must be JSON, sent with Content-Type: application/json",
            type="invalid_request_error",
            code="unsupported_media_type",
        )
    return error_response(
        422,
        describe_validation_errors(errors),
        type="invalid_request_error",
        code="validation_error",
    )


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    """429 in the one shape; the middleware adds x-ratelimit-* and Retry-After."""
    assert isinstance(exc, RateLimitExceeded)
    metrics.RATE_LIMIT_REJECTIONS.inc()
    state = getattr(exc, "state", None)
    wait = f"; retry in {max(1, state.reset_in)} s" if state is not None else ""
    return error_response(
        429,
        f"rate limit exceeded: {exc.detail} for this API key{wait}",
        type="rate_limit_error",
        code="rate_limit_exceeded",
    )


async def _agent_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, agent_core.AgentError)
    status, kind, code = agent_error_status(exc)
    return error_response(
        status,
        agent_error_message(exc),
        type=kind,
        code=code,
        headers=agent_error_headers(exc),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every anticipated failure answers in the one shape. Unanticipated ones are answered by
    the request middleware (api.middleware), which knows the request id. When
    `app.state.admission` is set, body errors are answered only to admitted callers."""
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(RateLimitExceeded, _rate_limited)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(agent_core.AgentError, _agent_error)


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# For the OpenAPI document: the error responses every protected endpoint can give.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _doc(
        "Missing or invalid API key, in X-API-Key or Authorization: Bearer (codes "
        "missing_api_key, invalid_api_key, conflicting_api_keys)"
    ),
    413: _doc("Request body larger than MAX_BODY_BYTES (code request_too_large)"),
    422: _doc("Invalid parameters (code validation_error)"),
    429: _doc(
        "Per-key rate limit exceeded (code rate_limit_exceeded); Retry-After says when to retry"
    ),
    500: _doc("Internal error (code internal_error), with a request_id to report"),
    503: _doc("Rate-limit store unreachable in reject mode (code rate_limit_unavailable)"),
}

TASK_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc(
        "Invalid request: unknown provider (unknown_provider) or strategy (unknown_strategy), "
        "body not JSON (invalid_json), refused by the engine (invalid_request), or a model "
        "without a price for a key with a spend budget (unknown_price)"
    ),
    402: _doc(
        "The key's spend budget (KEY_BUDGETS) is used up or fully reserved by tasks in flight "
        "(budget_exhausted); x-budget-remaining says what is left"
    ),
    415: _doc("Body sent with a Content-Type other than JSON (unsupported_media_type)"),
    422: _doc("Invalid parameters (validation_error), or the budget ran out (budget_exceeded)"),
    502: _doc("The provider failed (unavailable, provider_error, authentication_failed)"),
    503: _doc(
        "The provider rate-limited us (rate_limited, with Retry-After), is not configured "
        "(not_configured), the history store is unreachable (storage_unavailable), or the "
        "budget store is, for a budgeted key (budget_unavailable)"
    ),
    504: _doc(
        "The provider timed out (timeout), or the task's deadline_ms passed before any answer "
        "(deadline_exceeded)"
    ),
}
