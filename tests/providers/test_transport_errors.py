"""The one mapping from upstream failures to error kinds, and the redaction helper."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from agent_core import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    UnavailableError,
)
from providers.transport.errors import (
    error_for_status,
    is_retryable,
    parse_retry_after,
    redact,
    safe_url,
    upstream_detail,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, InvalidRequestError),
        (408, ProviderTimeoutError),
        (409, UnavailableError),
        (413, InvalidRequestError),
        (422, InvalidRequestError),
        (429, RateLimitError),
        (500, UnavailableError),
        (502, UnavailableError),
        (503, UnavailableError),
        (529, UnavailableError),
        (302, ProviderError),
    ],
)
def test_each_status_maps_to_its_error_kind(status: int, kind: type[Exception]) -> None:
    assert type(error_for_status("p", status, {}, b"")) is kind


def test_the_message_says_who_what_and_quotes_the_upstreams_error() -> None:
    body = (
        b'{"error": {"message": "Rate limit reached", "type": "requests",'
        b' "code": "rate_limit_exceeded"}}'
    )
    error = error_for_status("openai", 429, {"x-request-id": "req_1"}, body)
    assert str(error) == (
        "openai: the upstream is rate limiting us (HTTP 429 rate_limit_exceeded): "
        "Rate limit reached [request id req_1]"
    )


def test_anthropic_error_bodies_are_understood() -> None:
    body = b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    assert upstream_detail(body) == ("overloaded_error", "Overloaded")


def test_an_html_error_page_is_not_quoted() -> None:
    error = error_for_status("p", 502, {}, b"<html><body>Bad Gateway</body></html>")
    assert str(error) == "p: the upstream is unavailable (HTTP 502)"


def test_a_long_upstream_message_is_cut() -> None:
    body = b'{"error": {"message": "' + b"x" * 5000 + b'"}}'
    assert len(str(error_for_status("p", 400, {}, body))) < 400


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.05"}, 0.05),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_from_seconds_or_milliseconds(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert parse_retry_after(headers) == seconds


def test_retry_after_can_be_an_http_date() -> None:
    wait = parse_retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)})
    assert wait is not None and 8 < wait <= 10


def test_retry_after_reaches_rate_limit_and_unavailable_errors() -> None:
    assert error_for_status("p", 429, {"retry-after": "3"}, b"").retry_after == 3.0
    assert error_for_status("p", 503, {"retry-after": "4"}, b"").retry_after == 4.0


def test_only_rate_limits_timeouts_and_unavailability_are_retryable() -> None:
    assert [is_retryable(error_for_status("p", s, {}, b"")) for s in (429, 408, 503, 400, 401)] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_the_upstreams_x_should_retry_overrides_the_kind() -> None:
    assert not is_retryable(error_for_status("p", 503, {"x-should-retry": "false"}, b""))
    assert is_retryable(error_for_status("p", 400, {"x-should-retry": "true"}, b""))


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcDEF1234567890",
        "sk-ant-api03-abcdef-123456",
        "sk-abc***wxyz",
        "gsk_abcdefghij1234567890",
        "AIzaSyA1234567890abcdefghijklmnop",
        "hf_abcdefghijklmnop",
    ],
)
def test_redact_removes_things_shaped_like_keys(secret: str) -> None:
    assert secret not in redact(f"Incorrect API key provided: {secret}. Try again.")


def test_redact_removes_bearer_tokens_and_key_assignments() -> None:
    text = redact("Authorization: Bearer abc.def-123 and api_key=zzz999 and x-api-key: qqq111")
    assert "abc.def-123" not in text and "zzz999" not in text and "qqq111" not in text


def test_redact_removes_the_given_secrets_whatever_their_shape() -> None:
    assert redact("the key is hunter2hunter2", ["hunter2hunter2"]) == "the key is [redacted]"


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "max_tokens: 5 is too small for a risk-free task-based answer"
    assert redact(text) == text


def test_safe_url_drops_user_info_and_query() -> None:
    assert (
        safe_url("https://user:pw@host.example:8443/v1?key=abc") == "https://host.example:8443/v1"
    )
