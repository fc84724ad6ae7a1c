"""Both transports, lean (aiohttp + orjson) and sdk (the official SDKs), against the same mock
upstream: for every answer and every fault they give the same Completion or the same error.

This is the fault table of the providers issue, as tests: each injected upstream behaviour,
the error kind each transport raises (with retries off; retries are tested elsewhere).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from agent_core import AgentError, CompletionRequest, Message
from providers.transport.base import UpstreamProvider
from tests.mock_upstreams import Fault
from tests.providers.upstream_helpers import PROVIDER_KINDS, TRANSPORTS, ask, closed_port

# (test id, injected fault, expected error code or None for an answer)
FAULT_TABLE: list[tuple[str, Fault | None, str | None]] = [
    ("answer", None, None),
    ("scripted-answer", Fault.reply("The answer is 4.", usage=(21, 5)), None),
    ("http-400", Fault.error(400), "invalid_request"),
    ("http-401", Fault.error(401), "authentication_failed"),
    ("http-403", Fault.error(403), "authentication_failed"),
    ("http-404", Fault.error(404), "invalid_request"),
    ("http-408", Fault.error(408), "timeout"),
    ("http-409", Fault.error(409), "unavailable"),
    ("http-422", Fault.error(422), "invalid_request"),
    ("http-429-retry-after", Fault.rate_limited(retry_after=0.05), "rate_limited"),
    ("http-429-retry-after-ms", Fault.rate_limited(None, retry_after_ms=50), "rate_limited"),
    ("http-429-no-retry-after", Fault.rate_limited(None), "rate_limited"),
    ("http-500", Fault.error(500), "unavailable"),
    ("http-502-html", Fault.html(502), "unavailable"),
    ("http-503", Fault.error(503), "unavailable"),
    ("http-529-overloaded", Fault.error(529), "unavailable"),
    ("slow-past-timeout", Fault.slow(1.0), "timeout"),
    ("dropped-connection", Fault.drop(), "unavailable"),
    ("dropped-mid-body", Fault.drop_mid_body(), "unavailable"),
    ("truncated-json", Fault.truncated(), "provider_error"),
    ("non-json-200", Fault.non_json(), "provider_error"),
    ("html-200", Fault.html(200), "provider_error"),
    ("json-missing-fields", Fault.missing_fields(), "provider_error"),
    ("json-not-an-object", Fault.raw(200, b"[1, 2, 3]"), "provider_error"),
]

REQUEST_ID = re.compile(r" \[request id [^\]]+\]")


async def outcome(provider: UpstreamProvider, request: CompletionRequest) -> tuple[Any, ...]:
    """What a caller observes: the Completion's fields, or the error's kind and retry-after
    (and its message, less the per-call request id)."""
    try:
        c = await provider.complete(request)
    except AgentError as error:
        return ("error", error.code, error.retry_after, REQUEST_ID.sub("", str(error)))
    usage = (c.usage.prompt_tokens, c.usage.completion_tokens)
    return ("answer", c.text, c.model, c.finish_reason, usage, c.provider)


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
@pytest.mark.parametrize(
    ("fault", "expected"), [(f, e) for _, f, e in FAULT_TABLE], ids=[i for i, _, _ in FAULT_TABLE]
)
async def test_both_transports_give_the_same_result_for_each_upstream_behaviour(
    make_provider: Any,
    upstreams: dict[str, Any],
    kind: str,
    fault: Fault | None,
    expected: str | None,
) -> None:
    upstream = upstreams[kind]
    seen = {}
    for transport in TRANSPORTS:
        provider = make_provider(kind, transport, timeout=0.3)
        if fault is not None:
            upstream.enqueue(fault)
        seen[transport] = await outcome(provider, ask())
    assert seen["lean"] == seen["sdk"]
    if expected is None:
        assert seen["lean"][0] == "answer"
    else:
        assert seen["lean"][:2] == ("error", expected)
    assert upstream.calls == len(TRANSPORTS)  # one attempt each: retries are off here


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_rate_limit_retry_after_reaches_the_caller_from_both_transports(
    make_provider: Any, upstreams: dict[str, Any], kind: str
) -> None:
    for transport in TRANSPORTS:
        upstreams[kind].enqueue(Fault.rate_limited(retry_after=7))
        with pytest.raises(AgentError) as caught:
            await make_provider(kind, transport).complete(ask())
        assert (caught.value.code, caught.value.retry_after) == ("rate_limited", 7.0)


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_an_http_date_retry_after_is_read_the_same_by_both_transports(
    make_provider: Any, upstreams: dict[str, Any], kind: str
) -> None:
    import time
    from email.utils import formatdate

    waits = []
    for transport in TRANSPORTS:
        upstreams[kind].enqueue(Fault.rate_limited(formatdate(time.time() + 30, usegmt=True)))
        with pytest.raises(AgentError) as caught:
            await make_provider(kind, transport).complete(ask())
        assert caught.value.retry_after is not None
        waits.append(caught.value.retry_after)
    assert all(25 < w <= 31 for w in waits)


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_a_refused_connection_is_unavailable_on_both_transports(
    make_provider: Any, kind: str
) -> None:
    for transport in TRANSPORTS:
        provider = make_provider(kind, transport, base_url=f"http://127.0.0.1:{closed_port()}")
        with pytest.raises(AgentError) as caught:
            await provider.complete(ask())
        assert caught.value.code == "unavailable"


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_a_wrong_key_is_an_authentication_error_on_both_transports(
    make_provider: Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("WRONG_KEY", "sk-wrong-0123456789abcdefghij")
    for transport in TRANSPORTS:
        provider = make_provider(kind, transport, api_key_env="WRONG_KEY")
        with pytest.raises(AgentError) as caught:
            await provider.complete(ask())
        assert caught.value.code == "authentication_failed"
        assert "0123456789abcdefghij" not in str(caught.value)


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_both_transports_send_the_same_json_body(
    make_provider: Any, upstreams: dict[str, Any], kind: str
) -> None:
    request = CompletionRequest(
        [
            Message("system", "Be terse."),
            Message("user", "Name a colour."),
            Message("assistant", "Red."),
            Message("user", "Another?"),
        ],
        model="some-model",
        temperature=0.3,
        max_tokens=17,
        stop=["\n\n"],
        extra={"top_p": 0.9, "metadata": {"user_id": "u-1"}},
    )
    bodies = []
    for transport in TRANSPORTS:
        await make_provider(kind, transport).complete(request)
        bodies.append(upstreams[kind].requests[-1].json)
    assert bodies[0] == bodies[1]


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_a_reply_cut_by_max_tokens_finishes_with_length_on_both_transports(
    make_provider: Any, kind: str
) -> None:
    for transport in TRANSPORTS:
        completion = await make_provider(kind, transport).complete(
            ask("one two three four five", max_tokens=2)
        )
        assert (completion.text, completion.finish_reason) == ("one two", "length")


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_a_stop_sequence_finishes_with_stop_on_both_transports(
    make_provider: Any, kind: str
) -> None:
    for transport in TRANSPORTS:
        completion = await make_provider(kind, transport).complete(
            ask("first. END second", stop=[" END"])
        )
        assert (completion.text, completion.finish_reason) == ("first.", "stop")
