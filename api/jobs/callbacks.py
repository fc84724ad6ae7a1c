"""Callbacks: a signed POST to the task's `callback_url` when a background task ends.

Off by default: a URL is accepted only when its host is in CALLBACK_ALLOWED_HOSTS and
CALLBACK_SECRET is set (else 422 callback_not_allowed), so the service cannot be made to call
arbitrary addresses. The body is the task's record, exactly as `GET /task/{id}` renders it; the
headers carry

    X-ReasoningAgent-Timestamp: <unix seconds>
    X-ReasoningAgent-Signature: sha256=<hex HMAC-SHA256(CALLBACK_SECRET, "<timestamp>." + body)>

A receiver recomputes the HMAC over the raw body, compares in constant time, and refuses
timestamps older than a few minutes (replays). Delivery is tried CALLBACK_MAX_ATTEMPTS times,
waiting CALLBACK_RETRY_SECONDS, then twice that, and so on; a 2xx is delivered, a 4xx other than
408 and 429 is final, anything else (5xx, timeout, connection error) is retried. Redirects are
not followed. The outcome is recorded on the task (`callback` in GET /task/{id}).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import orjson

from api import metrics

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CallbackNotAllowed",
    "check_callback_url",
    "deliver",
    "sign",
]

log = logging.getLogger("api.jobs")

SIGNATURE_HEADER: Final = "X-ReasoningAgent-Signature"
TIMESTAMP_HEADER: Final = "X-ReasoningAgent-Timestamp"


class CallbackNotAllowed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and host != entry[2:]:
                return True
        elif host == entry:
            return True
    return False


def check_callback_url(url: str, *, allowed_hosts: list[str], secret_set: bool) -> str:
    """The URL if callbacks may go there. :raises CallbackNotAllowed: with a safe message."""
    if not allowed_hosts or not secret_set:
        raise CallbackNotAllowed(
            "callbacks are not enabled on this server (CALLBACK_ALLOWED_HOSTS and "
            "CALLBACK_SECRET); poll GET /task/{id} or follow GET /task/{id}/events instead"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        raise CallbackNotAllowed("callback_url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise CallbackNotAllowed("callback_url must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise CallbackNotAllowed("callback_url must not carry credentials")
    if not _host_allowed(host, allowed_hosts):
        raise CallbackNotAllowed(
            f"callback_url's host {host!r} is not allowed (CALLBACK_ALLOWED_HOSTS)"
        )
    return url


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


async def deliver(
    url: str,
    payload: dict[str, Any],
    *,
    secret: str,
    attempt_seconds: float,
    max_attempts: int,
    retry_seconds: float,
) -> dict[str, Any]:
    """Delivers the callback; returns its outcome (never raises but for cancellation)."""
    body = orjson.dumps(payload)
    outcome: dict[str, Any] = {"url": url, "status": "failed", "attempts": 0}
    wait = retry_seconds
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=attempt_seconds)
    ) as session:
        for attempt in range(1, max_attempts + 1):
            outcome["attempts"] = attempt
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(secret, timestamp, body),
                "User-Agent": "reasoning-agent-callback",
            }
            final = False
            try:
                async with session.post(
                    url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    outcome["last_status"] = response.status
                    outcome.pop("last_error", None)
                    if 200 <= response.status < 300:
                        outcome["status"] = "delivered"
                        break
                    final = 400 <= response.status < 500 and response.status not in (408, 429)
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                outcome["last_error"] = type(error).__name__
            if final or attempt == max_attempts:
                break
            metrics.JOB_CALLBACKS.labels(outcome="retried").inc()
            await asyncio.sleep(wait)
            wait *= 2
    outcome["at"] = datetime.now(UTC).isoformat()
    metrics.JOB_CALLBACKS.labels(outcome=outcome["status"]).inc()
    if outcome["status"] != "delivered":
        log.warning(
            "callback not delivered after %d attempt(s): %s",
            outcome["attempts"],
            outcome.get("last_status") or outcome.get("last_error"),
        )
    return outcome
