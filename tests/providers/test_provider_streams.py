"""Streams from the built-in upstream providers, on both transports against the same mock
upstream: the same deltas, final completion and error kind for every stream and every fault
(Anthropic's event stream and OpenAI's chunks become the same deltas); the retries of the
opening, the deadline over the whole stream, and upstreams that ignore `stream_options` or
`stream` itself."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from agent_core import AgentError, Completion, CompletionRequest, ProviderTimeoutError
from providers.transport.base import UpstreamProvider
from tests.mock_upstreams import Fault
from tests.mock_upstreams.server import split_deltas
from tests.providers.upstream_helpers import PROVIDER_KINDS, TRANSPORTS, ask

kinds = pytest.mark.parametrize("kind", PROVIDER_KINDS)
both = pytest.mark.parametrize("transport", TRANSPORTS)

REQUEST_ID = re.compile(r" \[request id [^\]]+\]")
WORDS = "one two three four five six seven eight nine ten"

# (test id, injected fault, expected error code or None for an answer, deltas before it)
STREAM_FAULTS: list[tuple[str, Fault | None, str | None, int]] = [
    ("answer", None, None, 5),
    ("scripted-answer", Fault.reply("The answer is 4.", usage=(21, 5)), None, 4),
    ("http-400", Fault.error(400), "invalid_request", 0),
    ("http-401", Fault.error(401), "authentication_failed", 0),
    ("http-429-retry-after", Fault.rate_limited(retry_after=0.05), "rate_limited", 0),
    ("http-500", Fault.error(500), "unavailable", 0),
    ("http-502-html", Fault.html(502), "unavailable", 0),
    ("http-529-overloaded", Fault.error(529), "unavailable", 0),
    ("slow-past-timeout", Fault.slow(1.0), "timeout", 0),
    ("dropped-before-headers", Fault.drop(), "unavailable", 0),
    ("dropped-after-headers", Fault.drop_mid_stream(after=0), "unavailable", 0),
    ("dropped-mid-stream", Fault.drop_mid_stream(after=2), "unavailable", 2),
    ("dropped-mid-body", Fault.drop_mid_body(), "unavailable", 2),
    ("error-event-overloaded", Fault.stream_error(after=1, status=529), "unavailable", 1),
    ("error-event-rate-limited", Fault.stream_error(after=3, status=429), "rate_limited", 3),
    ("error-event-invalid", Fault.stream_error(after=0, status=400), "invalid_request", 0),
    ("truncated-json", Fault.truncated(), "provider_error", 0),
    ("non-json-200", Fault.non_json(), "provider_error", 0),
    ("html-200", Fault.html(200), "provider_error", 0),
    ("json-missing-fields", Fault.missing_fields(), "provider_error", 0),
    (
        "event-not-json",
        Fault.raw(
            200, b"event: content_block_delta\ndata: {not\n\n", content_type="text/event-stream"
        ),
        "provider_error",
        0,
    ),
    ("empty-event-stream", Fault.raw(200, b"", content_type="text/event-stream"), "unavailable", 0),
]


async def stream_outcome(provider: UpstreamProvider, request: CompletionRequest) -> tuple[Any, ...]:
    """What a consumer of the stream observes: the deltas and the final Completion's fields,
    or the deltas before the error and the error's kind, retry-after and message."""
    deltas: list[str] = []
    final: list[Completion] = []
    try:
        async for item in provider.stream(request):
            assert not final, "nothing may follow the Completion"
            if isinstance(item, Completion):
                final.append(item)
            else:
                assert isinstance(item, str) and item
                deltas.append(item)
    except AgentError as error:
        message = REQUEST_ID.sub("", str(error))
        return ("error", deltas, error.code, error.retry_after, message)
    (c,) = final
    assert "".join(deltas) == c.text
    usage = (c.usage.prompt_tokens, c.usage.completion_tokens)
    return ("answer", deltas, c.text, c.model, c.finish_reason, usage, c.provider)


@kinds
@pytest.mark.parametrize(
    ("fault", "expected", "deltas"),
    [(f, e, d) for _, f, e, d in STREAM_FAULTS],
    ids=[i for i, _, _, _ in STREAM_FAULTS],
)
async def test_both_transports_stream_the_same_for_each_upstream_behaviour(
    make_provider: Any,
    upstreams: dict[str, Any],
    kind: str,
    fault: Fault | None,
    expected: str | None,
    deltas: int,
) -> None:
    upstream = upstreams[kind]
    seen = {}
    for transport in TRANSPORTS:
        provider = make_provider(kind, transport, timeout=0.3)
        if fault is not None:
            upstream.enqueue(fault)
        seen[transport] = await stream_outcome(provider, ask("What is two plus two?"))
    assert seen["lean"] == seen["sdk"]
    if expected is None:
        assert seen["lean"][0] == "answer"
    else:
        assert seen["lean"][0] == "error"
        assert seen["lean"][2] == expected
    assert len(seen["lean"][1]) == deltas
    assert upstream.calls == len(TRANSPORTS)  # one attempt each: retries are off here


@kinds
@both
async def test_a_stream_ends_with_what_complete_answers(
    make_provider: Any, kind: str, transport: str
) -> None:
    provider = make_provider(kind, transport)
    for request in (
        ask(WORDS),
        ask(WORDS, max_tokens=3),  # cut: finish reason `length`
        ask("first. END second", stop=[" END"]),
        ask("  spaced   out\n\nlines  "),
    ):
        outcome = await stream_outcome(provider, request)
        completed = await provider.complete(request)
        usage = (completed.usage.prompt_tokens, completed.usage.completion_tokens)
        assert outcome[2:] == (
            completed.text,
            completed.model,
            completed.finish_reason,
            usage,
            completed.provider,
        )
        assert outcome[1] == split_deltas(completed.text)  # as the upstream sent them


@kinds
async def test_openai_chunks_and_anthropic_events_become_the_same_deltas(
    make_provider: Any, kind: str
) -> None:
    outcome = await stream_outcome(make_provider(kind, "lean"), ask(WORDS, max_tokens=4))
    assert outcome[1] == ["one", " two", " three", " four"]
    assert outcome[4] == "length"


@kinds
async def test_both_transports_send_the_same_stream_request(
    make_provider: Any, upstreams: dict[str, Any], kind: str
) -> None:
    request = ask("Name a colour.", model="some-model", max_tokens=17, stop=["\n\n"])
    bodies = []
    for transport in TRANSPORTS:
        await stream_outcome(make_provider(kind, transport), request)
        bodies.append(upstreams[kind].requests[-1].json)
    assert bodies[0] == bodies[1]
    assert bodies[0]["stream"] is True
    if kind == "openai":
        assert bodies[0]["stream_options"] == {"include_usage": True}
    else:
        assert "stream_options" not in bodies[0]


@kinds
async def test_extra_options_cannot_turn_the_stream_off(
    make_provider: Any, upstreams: dict[str, Any], kind: str
) -> None:
    request = ask("still streamed", extra={"stream": False, "stream_options": {}})
    for transport in TRANSPORTS:
        outcome = await stream_outcome(make_provider(kind, transport), request)
        assert outcome[1] == ["still", " streamed"]
    assert all(r.json["stream"] is True for r in upstreams[kind].requests)
    assert upstreams[kind].stream_outcomes.count("completed") == len(TRANSPORTS)


@kinds
async def test_a_stream_cut_cleanly_before_its_end_is_unavailable(
    make_provider: Any, upstreams: dict[str, Any], kind: str
) -> None:
    # The body ends normally, but the answer has no finish: the upstream stopped mid-answer.
    body = {"model": "m", "messages": [], "stream_options": {"include_usage": True}}
    frames = upstreams[kind].stream_frames(body, Fault.reply("Hi there"))
    cut = b"".join(frame for frame, _ in frames[:-3])  # up to the last text delta
    seen = []
    for transport in TRANSPORTS:
        upstreams[kind].enqueue(Fault.raw(200, cut, content_type="text/event-stream"))
        seen.append(await stream_outcome(make_provider(kind, transport), ask()))
    assert seen[0] == seen[1]
    assert seen[0][:3] == ("error", ["Hi", " there"], "unavailable")
    assert seen[0][4] == f"{kind}: the stream ended before the answer did"


# -- upstreams that half-support streaming -----------------------------------------------------


@both
async def test_a_server_that_ignores_stream_options_streams_with_usage_0_0(
    make_provider: Any, compatible_upstream: Any, transport: str
) -> None:
    compatible_upstream.ignores_stream_options = True
    outcome = await stream_outcome(make_provider("openai_compatible", transport), ask(WORDS))
    assert outcome[0] == "answer"
    assert (outcome[1][:2], outcome[2], outcome[5]) == (["one", " two"], WORDS, (0, 0))
    assert "usage" not in compatible_upstream.requests[-1].body.decode().split('"stream"')[0]


@pytest.mark.parametrize("kind", ["openai", "openai_compatible", "anthropic"])
@both
async def test_a_server_that_ignores_stream_answers_one_delta_and_the_completion(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].ignores_stream = True
    provider = make_provider(kind, transport)
    outcome = await stream_outcome(provider, ask(WORDS))
    completed = await provider.complete(ask(WORDS))
    usage = (completed.usage.prompt_tokens, completed.usage.completion_tokens)
    assert outcome == (
        "answer",
        [WORDS],
        WORDS,
        completed.model,
        completed.finish_reason,
        usage,
        completed.provider,
    )
    assert not upstreams[kind].stream_outcomes  # it never streamed


async def test_usage_comes_from_the_upstreams_usage_chunk(
    make_provider: Any, openai_upstream: Any
) -> None:
    for transport in TRANSPORTS:
        openai_upstream.enqueue(Fault.reply("Four.", usage=(123, 45)))
        outcome = await stream_outcome(make_provider("openai", transport), ask())
        assert outcome[5] == (123, 45)


# -- retries and the deadline ------------------------------------------------------------------


@kinds
@both
async def test_opening_a_stream_is_retried_like_any_call(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].fail_next(2, Fault.error(503))
    provider = make_provider(kind, transport, max_retries=2)
    outcome = await stream_outcome(provider, ask("after two 503s"))
    assert outcome[:3] == ("answer", ["after", " two", " 503s"], "after two 503s")
    assert upstreams[kind].calls == 3


@kinds
@both
@pytest.mark.parametrize("after", [0, 2])
async def test_a_stream_that_fails_once_open_is_not_retried(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str, after: int
) -> None:
    upstreams[kind].enqueue(Fault.drop_mid_stream(after=after))
    provider = make_provider(kind, transport, max_retries=3)
    outcome = await stream_outcome(provider, ask(WORDS))
    assert (len(outcome[1]), outcome[2]) == (after, "unavailable")
    assert upstreams[kind].calls == 1


@kinds
@both
async def test_a_stream_longer_than_one_attempts_timeout_finishes_within_the_deadline(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    # Ten deltas 0.1 s apart take 1 s, over three times `timeout`: each wait for a delta is
    # what `timeout` bounds, the whole stream is what the deadline bounds.
    upstreams[kind].delta_delay = 0.1
    provider = make_provider(kind, transport, timeout=0.3, deadline=5.0)
    outcome = await stream_outcome(provider, ask(WORDS))
    assert (outcome[0], outcome[2]) == ("answer", WORDS)


@kinds
@both
async def test_a_stream_past_the_calls_deadline_is_a_timeout(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].delta_delay = 0.2  # 2 s for the ten words
    provider = make_provider(kind, transport, timeout=0.5, deadline=0.7)
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError) as caught:
        async for _ in provider.stream(ask(WORDS)):
            pass
    waited = time.monotonic() - started
    assert 0.7 <= waited < 0.7 + 0.3, waited
    assert caught.value.message.startswith(
        f"{kind}: the stream did not finish within the call's deadline ("
    )
    assert caught.value.message.endswith("s; at most 0.7 s per call)")


@kinds
@both
async def test_a_stalled_stream_times_out_after_timeout(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    upstreams[kind].delta_delay = 2.0
    provider = make_provider(kind, transport, timeout=0.3, deadline=10.0)
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match=r"did not answer within 0\.3 s"):
        async for _ in provider.stream(ask(WORDS)):
            pass
    assert time.monotonic() - started < 0.3 + 0.3


@kinds
@both
async def test_streams_reuse_the_providers_connection(
    make_provider: Any, upstreams: dict[str, Any], kind: str, transport: str
) -> None:
    provider = make_provider(kind, transport)
    for _ in range(3):
        assert (await stream_outcome(provider, ask()))[0] == "answer"
    await provider.complete(ask())
    assert len(upstreams[kind].connections) == 1
