"""From upstream failures to agent_core error kinds: one mapping for every transport.

Both transports (lean aiohttp, official SDKs) hand the status, headers and body of a failed
call to `error_for_status`, so the same upstream answer always becomes the same error kind
with the same retry-after. Messages are ours, plus the upstream's own error type and message
after `redact` has removed anything that looks like a credential.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from agent_core import (
    AgentError,
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    UnavailableError,
)

REDACTED = "[redacted]"
MAX_UPSTREAM_MESSAGE = 300  # characters of the upstream's own message we quote

# Things that look like credentials: provider key formats, bearer tokens, `api_key=...`.
_SECRET = re.compile(
    r"""
    \b(?:sk|pk|rk)-[A-Za-z0-9_\-*.]{3,}       # OpenAI / Anthropic (sk-ant-...) and masked forms
    | \b(?:gsk|hf|xai|ghp|gho|glpat)[_-][A-Za-z0-9_\-]{8,}  # Groq, Hugging Face, xAI, GitHub...
    | \bAIza[0-9A-Za-z_\-]{20,}                # Google
    | (?i:bearer)\s+[A-Za-z0-9_\-.=:+/~*]{4,}   # Authorization: Bearer <token>
    | (?i:(?:api[-_]?key|x-api-key|token|secret)["']?\s*[:=]\s*["']?)[^\s"',;}]+
    """,
    re.VERBOSE,
)

SHOULD_RETRY = "upstream_should_retry"  # attribute set from the `x-should-retry` header
UPSTREAM_STATUS = "upstream_status"  # attribute: the HTTP status the upstream answered

NOT_JSON = "HTTP 200 body is not JSON"
COULD_NOT_CONNECT = "could not connect"
CONNECTION_DROPPED = "connection dropped"
STREAM_NOT_JSON = "a stream event is not JSON"
NOT_A_STREAM = "HTTP 200 body is an HTML page, not an event stream"
STREAM_ENDED_EARLY = "the stream ended before the answer did"

RETRYABLE: tuple[type[AgentError], ...] = (RateLimitError, ProviderTimeoutError, UnavailableError)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Removes the given secrets and anything shaped like a credential from `text`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _SECRET.sub(REDACTED, text)


def safe_url(url: str) -> str:
    """scheme://host:port/path of `url`, without user info or query (either may hold a key)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asked us to wait: `retry-after-ms`, then `retry-after` as seconds
    or an HTTP date (the same precedence as the official SDKs). None when absent or unusable."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
        if seconds == math.inf:
            return seconds  # an absurd wait: the retry policy refuses it
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_tz(value)
            if when is not None:
                return max(0.0, email.utils.mktime_tz(when) - time.time())
        except (TypeError, ValueError, OverflowError):
            return None
    return None


def upstream_detail(body: bytes | str | None) -> tuple[str | None, str | None]:
    """(error type, message) from an OpenAI `{"error": {...}}` or Anthropic
    `{"type": "error", "error": {...}}` body; (None, None) when the body is not one."""
    if not body:
        return None, None
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):  # some OpenAI-compatible servers: {"error": "message"}
        return None, error
    if not isinstance(error, dict):
        return None, None
    kind = error.get("code") or error.get("type")
    message = error.get("message")
    return (
        str(kind) if kind is not None else None,
        str(message) if message is not None else None,
    )


def _kind_for_status(status: int) -> tuple[type[AgentError], str]:
    if status in (401, 403):
        return AuthenticationError, "the upstream rejected the credentials"
    if status == 429:
        return RateLimitError, "the upstream is rate limiting us"
    if status == 408:
        return ProviderTimeoutError, "the upstream timed out"
    if status == 409:  # OpenAI and Anthropic: a lock timeout, to be retried (as the SDKs do)
        return UnavailableError, "the upstream reported a conflict"
    if status >= 500:  # includes Anthropic's 529 overloaded
        return UnavailableError, "the upstream is unavailable"
    if 400 <= status < 500:
        return InvalidRequestError, "the upstream rejected the request"
    return ProviderError, "the upstream answered with an unexpected status"


def error_for_status(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes | str | None,
    *,
    secrets: Iterable[str | None] = (),
) -> AgentError:
    """The agent_core error for an upstream's non-2xx answer."""
    cls, words = _kind_for_status(status)
    kind, message = upstream_detail(body)
    detail = f"HTTP {status}"
    if kind:
        detail += f" {kind}"
    text = f"{provider}: {words} ({detail})"
    if message:
        if len(message) > MAX_UPSTREAM_MESSAGE:
            message = message[:MAX_UPSTREAM_MESSAGE] + "..."
        text += f": {message}"
    request_id = headers.get("x-request-id") or headers.get("request-id")
    if request_id:
        text += f" [request id {request_id}]"
    text = redact(text, secrets)
    retry_after = parse_retry_after(headers) if issubclass(cls, RETRYABLE) else None
    error = cls(text, retry_after=retry_after)
    setattr(error, UPSTREAM_STATUS, status)
    # The upstream's own verdict on retrying (as the SDKs honour it): "true" / "false".
    should_retry = headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        setattr(error, SHOULD_RETRY, should_retry == "true")
    return error


# The error types upstreams send in the middle of a stream (Anthropic's `event: error`,
# OpenAI's `data: {"error": ...}`), as the HTTP status they stand for when sent before one.
STREAM_ERROR_STATUS = {
    "overloaded_error": 529,
    "api_error": 500,
    "server_error": 500,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "timeout_error": 408,
    "timeout": 408,
    "authentication_error": 401,
    "permission_error": 403,
    "invalid_request_error": 400,
    "not_found_error": 404,
    "request_too_large": 413,
}


def error_for_stream_event(
    provider: str, payload: Any, *, secrets: Iterable[str | None] = ()
) -> AgentError:
    """The agent_core error for an error event in a stream that had begun with HTTP 200.

    `payload` is the event's data, `{"error": {...}}` or the inner `{...}`. The kind is the one
    the same error type gets as an HTTP status; an unknown type is `unavailable` (the upstream
    failed while it answered). The status is not an `upstream_status`: none was sent."""
    error = payload.get("error", payload) if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        error = {}
    # OpenAI's `code` is the finer one (a 429's type is "requests" or "tokens").
    kind = error.get("code") or error.get("type")
    status = STREAM_ERROR_STATUS.get(str(error.get("code"))) or STREAM_ERROR_STATUS.get(
        str(error.get("type")), 500
    )
    message = error.get("message")
    cls, words = _kind_for_status(status)
    text = f"{provider}: {words} (in the stream"
    text += f": {kind})" if kind else ")"
    if message:
        message = str(message)
        if len(message) > MAX_UPSTREAM_MESSAGE:
            message = message[:MAX_UPSTREAM_MESSAGE] + "..."
        text += f": {message}"
    return cls(redact(text, secrets))


def upstream_status(error: BaseException) -> int | None:
    """The HTTP status behind an error made by `error_for_status` (None for the others)."""
    status = getattr(error, UPSTREAM_STATUS, None)
    return status if isinstance(status, int) else None


def timeout_error(provider: str, timeout: float) -> ProviderTimeoutError:
    return ProviderTimeoutError(f"{provider}: the upstream did not answer within {timeout:g} s")


def connection_error(provider: str, url: str, reason: str) -> UnavailableError:
    return UnavailableError(
        f"{provider}: could not reach the upstream at {safe_url(url)} ({reason})"
    )


def ended_early_error(provider: str) -> UnavailableError:
    """A stream whose body ended cleanly but before its answer's end (no finish reason): the
    same as a connection dropped mid-answer."""
    return UnavailableError(f"{provider}: {STREAM_ENDED_EARLY}")


def malformed_error(provider: str, what: str) -> ProviderError:
    return ProviderError(f"{provider}: the upstream's answer was malformed ({what})")


def is_retryable(error: BaseException) -> bool:
    """Rate limits, timeouts and unavailability are retried, unless the upstream said
    otherwise with `x-should-retry` (which, like the SDKs, we obey either way)."""
    verdict = getattr(error, SHOULD_RETRY, None)
    if isinstance(verdict, bool):
        return verdict
    return isinstance(error, RETRYABLE)
