"""API-key authentication: `X-API-Key` checked in constant time against every configured key.

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

from fastapi import Request
from fastapi.security import APIKeyHeader

from api import metrics
from api.config import ServiceSettings
from api.errors import APIError

__all__ = ["API_KEY_HEADER", "KeyRing", "Principal", "api_key_header"]

API_KEY_HEADER = "X-API-Key"
KEY_ID_HEX_CHARS = 16

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,  # we answer 401 in our own error shape
    scheme_name="APIKey",
    description="One of the keys configured in API_KEYS (or ADMIN_API_KEYS).",
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


class AuthenticationFailed(APIError):
    def __init__(self, missing: bool) -> None:
        super().__init__(
            401,
            "missing API key: send it in the X-API-Key header" if missing else "invalid API key",
            type="authentication_error",
            code="missing_api_key" if missing else "invalid_api_key",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )


def authenticate_request(request: Request, presented: str | None) -> Principal:
    """Returns the caller's principal, or raises 401 (counted in the metrics)."""
    keyring: KeyRing = request.app.state.keyring
    principal = keyring.authenticate(presented)
    if principal is None:
        reason = "missing" if not presented else "invalid"
        metrics.AUTH_FAILURES.labels(reason=reason).inc()
        raise AuthenticationFailed(missing=not presented)
    request.state.principal = principal
    return principal
