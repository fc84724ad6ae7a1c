"""API-key authentication: `X-API-Key` or `Authorization: Bearer`, checked in constant time
against every configured key.

The two headers carry the same keys (the OpenAI SDKs send `Authorization: Bearer`, our own
clients `X-API-Key`): one key id, one rate-limit budget, whichever header brought it. A request
that sends both with different values is refused (401 `conflicting_api_keys`) rather than
guessing which one it meant; so is X-API-Key beside an `Authorization` of another scheme.

The presented key is HMAC-hashed and its digest compared with the digest of *each* configured
key with `secrets.compare_digest`, without stopping at the first match: the time taken says
nothing about which key (or how much of one) matched, and comparing fixed-length digests also
hides the keys' lengths. The same digest, shortened, is the key id stored in the history and
used by the rate limiter: the key itself never leaves this module.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final, Literal

from fastapi import Request
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.datastructures import Headers

from api import metrics
from api.config import ServiceSettings
from api.errors import APIError

__all__ = [
    "API_KEY_HEADER",
    "KeyRing",
    "Principal",
    "api_key_header",
    "bearer_scheme",
    "presented_key",
]

API_KEY_HEADER = "X-API-Key"
KEY_ID_HEX_CHARS = 16
REALM = "ReasoningAgent"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,  # we answer 401 in our own error shape
    scheme_name="APIKey",
    description="One of the keys configured in API_KEYS (or ADMIN_API_KEYS).",
)
# Declared for the OpenAPI document (either scheme admits a request); the header itself is
# read by `presented_key`, the one place that decides which key a request presents.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description=(
        "The same keys as X-API-Key, as `Authorization: Bearer <key>` (what the OpenAI SDKs "
        "send). If both headers are sent they must carry the same key."
    ),
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (a short hash), and whether it is an admin key."""

    key_id: str
    is_admin: bool


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: Principal


class KeyRing:
    """The configured keys, kept only as HMAC digests."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._salt = settings.key_id_salt.encode()
        admin = set(settings.admin_api_keys)
        entries: dict[bytes, _Entry] = {}
        for key in [*settings.api_keys, *settings.admin_api_keys]:
            digest = self._digest(key)
            entries[digest] = _Entry(
                digest, Principal(key_id=digest.hex()[:KEY_ID_HEX_CHARS], is_admin=key in admin)
            )
        self._entries = tuple(entries.values())

    def _digest(self, key: str) -> bytes:
        return hmac.new(self._salt, key.encode(), hashlib.sha256).digest()

    def key_id(self, key: str) -> str:
        """The id recorded for `key` (stable as long as KEY_ID_SALT is)."""
        return self._digest(key).hex()[:KEY_ID_HEX_CHARS]

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal of `presented`, or None. Constant time over all keys."""
        if not presented:
            return None
        digest = self._digest(presented)
        found: Principal | None = None
        for entry in self._entries:  # no early exit: every key is compared every time
            if secrets.compare_digest(digest, entry.digest):
                found = entry.principal
        return found


AuthFailure = Literal["missing", "invalid", "conflicting"]

_FAILURES: Final[dict[str, tuple[str, str]]] = {
    "missing": (
        "missing_api_key",
        "missing API key: send it in the X-API-Key header or as Authorization: Bearer <key>",
    ),
    "invalid": ("invalid_api_key", "invalid API key"),
    "conflicting": (
        "conflicting_api_keys",
        "X-API-Key and Authorization carry different credentials: send the key in one of "
        "them, or the same key in both (Authorization: Bearer <key>)",
    ),
}


class AuthenticationFailed(APIError):
    def __init__(self, reason: AuthFailure) -> None:
        code, message = _FAILURES[reason]
        # RFC 9110 wants a challenge on a 401. RFC 6750's Bearer challenge names the scheme the
        # SDKs use (X-API-Key has no registered scheme), with error="invalid_token" once a key
        # was presented.
        challenge = f'Bearer realm="{REALM}"'
        if reason != "missing":
            challenge += ', error="invalid_token"'
        super().__init__(
            401,
            message,
            type="authentication_error",
            code=code,
            headers={"WWW-Authenticate": challenge},
        )


def _bearer_token(authorization: str) -> str | None:
    """The token of `Authorization: Bearer <token>` (scheme in any case); None for another
    scheme or no token."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def presented_key(headers: Headers) -> str | None:
    """The API key a request presents, in `X-API-Key` or as a Bearer token; None: neither.

    One request, one key: with X-API-Key, an `Authorization` header must be `Bearer` with the
    same key, or the request is refused rather than guessed at (an `Authorization` meant for a
    proxy in front of the service must not reach it).

    :raises AuthenticationFailed: the two headers carry different credentials (counted).
    """
    header_key = headers.get(API_KEY_HEADER) or None
    authorization = (headers.get("authorization") or "").strip() or None
    bearer_key = _bearer_token(authorization) if authorization else None
    if header_key is None or authorization is None:
        return header_key or bearer_key
    # Both are the caller's own strings: comparing them reveals nothing about the configured
    # keys, but compare_digest costs nothing and keeps the habit.
    if bearer_key is None or not secrets.compare_digest(header_key.encode(), bearer_key.encode()):
        metrics.AUTH_FAILURES.labels(reason="conflicting").inc()
        raise AuthenticationFailed("conflicting")
    return header_key


def authenticate_request(request: Request, presented: str | None) -> Principal:
    """Returns the caller's principal, or raises 401 (counted in the metrics)."""
    keyring: KeyRing = request.app.state.keyring
    principal = keyring.authenticate(presented)
    if principal is None:
        reason: AuthFailure = "missing" if not presented else "invalid"
        metrics.AUTH_FAILURES.labels(reason=reason).inc()
        raise AuthenticationFailed(reason)
    request.state.principal = principal
    return principal
