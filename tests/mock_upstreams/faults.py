"""Scriptable upstream behaviours: what the next call to a mock upstream gets.

A `Fault` is provider-neutral; each mock renders it in its own wire format (OpenAI's or
Anthropic's error bodies, headers and status codes). "Fault" is a slight misnomer for
`Fault.reply`, a scripted successful answer, kept here so one queue scripts a whole scenario.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal[
    "reply",  # a successful answer, optionally with scripted text / finish reason / usage
    "status",  # an HTTP error with the provider's real error body
    "slow",  # wait `delay` seconds, then answer normally (client timeouts)
    "drop",  # close the connection without any response
    "drop_mid_body",  # send the headers and half the body (a stream: half its deltas), then close
    "drop_mid_stream",  # a stream: send `after` text deltas, then close the socket
    "stream_error",  # a stream: send `after` text deltas, then the provider's error event
    "truncated",  # 200, content-type JSON, the body cut in half
    "non_json",  # 200, content-type JSON, the body is an HTML page
    "html",  # any status, content-type text/html (what a proxy or load balancer sends)
    "missing_fields",  # 200 with valid JSON that lacks the fields an answer needs
    "raw",  # exactly `status`, `body`, `headers` as given
]


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 200
    delay: float = 0.0
    retry_after: float | str | None = None
    retry_after_ms: float | None = None
    message: str | None = None
    error_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str = "application/json"
    text: str | None = None
    finish_reason: str | None = None
    usage: tuple[int, int] | None = None
    model: str | None = None
    after: int | None = None  # text deltas streamed before a mid-stream fault

    # -- constructors, one per behaviour ------------------------------------------------------

    @classmethod
    def reply(
        cls,
        text: str | None = None,
        *,
        finish_reason: str | None = None,
        usage: tuple[int, int] | None = None,
        model: str | None = None,
        delay: float = 0.0,
    ) -> Fault:
        """A success. `finish_reason` is given in the provider's own words (OpenAI `stop`,
        Anthropic `end_turn`); `usage` is (prompt/input tokens, completion/output tokens)."""
        return cls(
            "reply", text=text, finish_reason=finish_reason, usage=usage, model=model, delay=delay
        )

    @classmethod
    def error(
        cls,
        status: int,
        *,
        retry_after: float | str | None = None,
        retry_after_ms: float | None = None,
        message: str | None = None,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """An HTTP error with the provider's real error body for that status.

        `retry_after` becomes the `retry-after` header (seconds, or an HTTP date string).
        """
        return cls(
            "status",
            status=status,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            message=message,
            error_type=error_type,
            headers=dict(headers or {}),
        )

    @classmethod
    def rate_limited(
        cls, retry_after: float | str | None = 0.05, *, retry_after_ms: float | None = None
    ) -> Fault:
        return cls.error(429, retry_after=retry_after, retry_after_ms=retry_after_ms)

    @classmethod
    def slow(cls, delay: float) -> Fault:
        return cls("slow", delay=delay)

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")

    @classmethod
    def drop_mid_body(cls) -> Fault:
        return cls("drop_mid_body")

    @classmethod
    def drop_mid_stream(cls, after: int = 1) -> Fault:
        """A stream request: `after` text deltas (0: none, just the headers), then the socket is
        closed. A plain request gets `drop_mid_body`."""
        return cls("drop_mid_stream", after=after)

    @classmethod
    def stream_error(
        cls, after: int = 1, status: int = 529, *, message: str | None = None
    ) -> Fault:
        """A stream request: `after` text deltas, then the error event the provider sends in a
        stream (Anthropic's `event: error`, OpenAI's `data: {"error": ...}`) for the error
        `status` names (529: overloaded), and the end of the stream. A plain request gets
        that HTTP error instead."""
        return cls("stream_error", after=after, status=status, message=message)

    @classmethod
    def truncated(cls) -> Fault:
        return cls("truncated")

    @classmethod
    def non_json(cls) -> Fault:
        return cls("non_json")

    @classmethod
    def html(cls, status: int = 200) -> Fault:
        return cls("html", status=status, content_type="text/html")

    @classmethod
    def missing_fields(cls) -> Fault:
        return cls("missing_fields")

    @classmethod
    def raw(
        cls,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        return cls(
            "raw", status=status, body=body, content_type=content_type, headers=dict(headers or {})
        )
