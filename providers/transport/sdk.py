"""The SDK transport's error mapping: official SDK exceptions onto agent_core error kinds.

Both official SDKs share one exception design (`APIStatusError` with the httpx response,
`APITimeoutError`, `APIConnectionError`, `APIResponseValidationError`), so one function maps
both, given the SDK module (passed in, so nothing here imports an SDK). HTTP errors go through
the same `error_for_status` as the lean transport, so both agree on kind, message and
retry-after by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from agent_core import AgentError, ProviderError
from providers.transport.errors import (
    CONNECTION_DROPPED,
    COULD_NOT_CONNECT,
    NOT_JSON,
    STREAM_NOT_JSON,
    connection_error,
    error_for_status,
    error_for_stream_event,
    malformed_error,
    timeout_error,
)


def error_from_sdk(
    sdk: ModuleType,
    exc: BaseException,
    *,
    provider: str,
    base_url: str,
    timeout: float,
    secrets: Iterable[str | None] = (),
) -> AgentError:
    """The agent_core error for an exception raised by an official SDK call."""
    if isinstance(exc, AgentError):
        return exc
    if isinstance(exc, sdk.APITimeoutError):  # before APIConnectionError, its base class
        return timeout_error(provider, timeout)
    if isinstance(exc, sdk.APIConnectionError):
        # httpx's ConnectError (refused, no route, DNS) vs. a connection lost mid-call.
        cause = exc.__cause__ or exc.__context__
        connect = cause is not None and type(cause).__name__ == "ConnectError"
        reason = COULD_NOT_CONNECT if connect else CONNECTION_DROPPED
        return connection_error(provider, base_url, reason)
    if isinstance(exc, sdk.APIStatusError):
        response = exc.response
        return error_for_status(
            provider, response.status_code, response.headers, response.content, secrets=secrets
        )
    if isinstance(exc, sdk.APIResponseValidationError):
        return malformed_error(provider, "the SDK could not validate it")
    if isinstance(exc, ValueError):
        # A 200 whose body is not JSON: the SDKs raise a bare json.JSONDecodeError.
        return malformed_error(provider, NOT_JSON)
    return ProviderError(f"{provider}: the SDK failed with {type(exc).__name__}")


def stream_error_from_sdk(
    sdk: ModuleType,
    exc: BaseException,
    *,
    provider: str,
    base_url: str,
    timeout: float,
    secrets: Iterable[str | None] = (),
) -> AgentError:
    """The agent_core error for an exception raised while reading an SDK stream that opened
    with a 2xx: the same kinds the lean transport gives for the same stream."""
    if isinstance(exc, AgentError):
        return exc
    # An error event in the stream: Anthropic's SDK raises it as a status error with the
    # stream's own status (200), OpenAI's as a bare APIError; both keep the event's body.
    in_stream = isinstance(exc, sdk.APIStatusError) and exc.response.status_code < 300
    if in_stream or type(exc) is sdk.APIError:
        return error_for_stream_event(provider, getattr(exc, "body", None), secrets=secrets)
    if isinstance(exc, sdk.APIError):
        return error_from_sdk(
            sdk, exc, provider=provider, base_url=base_url, timeout=timeout, secrets=secrets
        )
    # Anthropic's SDK lets its HTTP client's errors out of a stream unwrapped (OpenAI's wraps
    # them): matched by name, which fits httpx and httpx2 alike without importing either.
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "TimeoutException" in names:
        return timeout_error(provider, timeout)
    if names & {"TransportError", "StreamError"}:
        return connection_error(provider, base_url, CONNECTION_DROPPED)
    if isinstance(exc, ValueError):  # a `data:` line that is not JSON
        return malformed_error(provider, STREAM_NOT_JSON)
    return ProviderError(f"{provider}: the SDK failed with {type(exc).__name__}")
