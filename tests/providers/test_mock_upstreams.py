"""The mock upstreams themselves: fault queue order, recording, auth, the child-process mode.

Other tests trust these mocks to speak the providers' wire formats; the official SDKs parsing
their answers (in the parity tests) is the main check of that, these cover the scripting."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.mock_upstreams import AnthropicMock, Fault, MockProcess, OpenAIMock

CHAT = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hello there"}]}


def test_queued_faults_are_served_in_order_then_answers_resume() -> None:
    with OpenAIMock() as upstream:
        upstream.enqueue(Fault.error(429), Fault.error(503))
        url = upstream.base_url + "/chat/completions"
        statuses = [httpx.post(url, json=CHAT).status_code for _ in range(3)]
    assert statuses == [429, 503, 200]


def test_fail_next_repeats_one_fault() -> None:
    with OpenAIMock() as upstream:
        upstream.fail_next(2, Fault.error(500))
        url = upstream.base_url + "/chat/completions"
        statuses = [httpx.post(url, json=CHAT).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]


def test_every_request_is_recorded_with_headers_and_json() -> None:
    with OpenAIMock() as upstream:
        httpx.post(upstream.base_url + "/chat/completions", json=CHAT, headers={"x-t": "1"})
        (recorded,) = upstream.requests
    assert (recorded.path, recorded.json, recorded.headers["x-t"]) == (
        "/v1/chat/completions",
        CHAT,
        "1",
    )


def test_openai_answers_with_n_choices_and_usage() -> None:
    with OpenAIMock() as upstream:
        body = httpx.post(upstream.base_url + "/chat/completions", json={**CHAT, "n": 3}).json()
    assert [c["message"]["content"] for c in body["choices"]] == ["hello there"] * 3
    assert body["usage"] == {"prompt_tokens": 6, "completion_tokens": 6, "total_tokens": 12}


def test_openai_rejects_a_wrong_key_with_its_real_error_body() -> None:
    with OpenAIMock(api_key="sk-right-000000000000") as upstream:
        response = httpx.post(
            upstream.base_url + "/chat/completions",
            json=CHAT,
            headers={"authorization": "Bearer sk-wrong-111111111111"},
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_rate_limit_carries_retry_after_and_the_providers_rate_limit_headers() -> None:
    with AnthropicMock() as upstream:
        upstream.enqueue(Fault.rate_limited(retry_after=2))
        response = httpx.post(
            upstream.base_url + "/v1/messages",
            json={"model": "m", "max_tokens": 5, "messages": []},
            headers={"anthropic-version": "2023-06-01"},
        )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Number of request tokens has exceeded your per-minute rate limit.",
        },
    }


def test_anthropic_rejects_a_system_role_inside_messages() -> None:
    with AnthropicMock() as upstream:
        response = httpx.post(
            upstream.base_url + "/v1/messages",
            json={"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            headers={"anthropic-version": "2023-06-01"},
        )
    assert response.status_code == 400


def test_a_dropped_connection_gives_the_client_no_response() -> None:
    with OpenAIMock() as upstream:
        upstream.enqueue(Fault.drop())
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(upstream.base_url + "/chat/completions", json=CHAT)


def test_the_mock_runs_as_a_child_process_for_benchmarks() -> None:
    with MockProcess("openai") as upstream:
        response = httpx.post(upstream.base_url + "/chat/completions", json=CHAT)
    assert response.json()["choices"][0]["message"]["content"] == "hello there"


# -- streams -----------------------------------------------------------------------------------

STREAM = {**CHAT, "stream": True}
MESSAGES = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": CHAT["messages"]}
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) of each server-sent event in `text`."""
    parsed = []
    for block in text.split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        parsed.append((fields.get("event"), fields["data"]))
    return parsed


def test_openai_streams_chunks_role_first_then_deltas_finish_usage_and_done() -> None:
    with OpenAIMock() as upstream:
        body = {**STREAM, "stream_options": {"include_usage": True}}
        response = httpx.post(upstream.base_url + "/chat/completions", json=body)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    *data, done = [d for _, d in events(response.text)]
    assert done == "[DONE]"
    chunks: list[dict[str, Any]] = [json.loads(d) for d in data]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert [c["choices"][0]["delta"]["content"] for c in chunks[1:3]] == ["hello", " there"]
    assert chunks[3]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert chunks[4]["choices"] == []
    assert chunks[4]["usage"] == {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}
    assert all(c["usage"] is None for c in chunks[:4])


def test_openai_sends_no_usage_chunk_unless_asked_or_when_it_ignores_stream_options() -> None:
    with OpenAIMock() as upstream:
        plain = httpx.post(upstream.base_url + "/chat/completions", json=STREAM).text
        upstream.ignores_stream_options = True
        body = {**STREAM, "stream_options": {"include_usage": True}}
        ignored = httpx.post(upstream.base_url + "/chat/completions", json=body).text
    for text in (plain, ignored):
        chunks = [json.loads(d) for _, d in events(text)[:-1]]
        assert len(chunks) == 4
        assert all("usage" not in c for c in chunks)


def test_a_server_that_ignores_stream_answers_plain_json() -> None:
    with OpenAIMock() as upstream:
        upstream.ignores_stream = True
        response = httpx.post(upstream.base_url + "/chat/completions", json=STREAM)
    assert response.headers["content-type"] == "application/json"
    assert response.json()["choices"][0]["message"]["content"] == "hello there"


def test_anthropic_streams_its_real_event_sequence() -> None:
    with AnthropicMock() as upstream:
        response = httpx.post(
            upstream.base_url + "/v1/messages",
            json={**MESSAGES, "stream": True},
            headers=ANTHROPIC_HEADERS,
        )
    seen = [(name, json.loads(data)) for name, data in events(response.text)]
    assert [name for name, _ in seen] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(name == data["type"] for name, data in seen)
    start = seen[0][1]["message"]
    assert (start["content"], start["stop_reason"], start["usage"]["input_tokens"]) == ([], None, 5)
    assert [d["delta"] for _, d in seen[3:5]] == [
        {"type": "text_delta", "text": "hello"},
        {"type": "text_delta", "text": " there"},
    ]
    assert seen[6][1]["delta"]["stop_reason"] == "end_turn"
    assert seen[6][1]["usage"] == {"output_tokens": 2}


def test_a_stream_can_fail_midway_with_the_providers_error_event() -> None:
    with AnthropicMock() as upstream:
        upstream.enqueue(Fault.stream_error(after=1))
        response = httpx.post(
            upstream.base_url + "/v1/messages",
            json={**MESSAGES, "stream": True},
            headers=ANTHROPIC_HEADERS,
        )
        outcomes = list(upstream.stream_outcomes)
    name, data = events(response.text)[-1]
    assert (name, json.loads(data)) == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    assert outcomes == ["error_event"]


def test_a_stream_can_drop_midway() -> None:
    with OpenAIMock() as upstream:
        upstream.enqueue(Fault.drop_mid_stream(after=1))
        received = []
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream("POST", upstream.base_url + "/chat/completions", json=STREAM) as stream,
        ):
            for line in stream.iter_lines():
                received.append(line)
        assert list(upstream.stream_outcomes) == ["dropped"]
    assert sum('"content":"hello"' in line for line in received) == 1
    assert not any("there" in line for line in received)


def test_deltas_are_paced_by_delta_delay() -> None:
    with OpenAIMock(delta_delay=0.1) as upstream:
        started = time.monotonic()
        httpx.post(upstream.base_url + "/chat/completions", json=STREAM)
        assert 0.2 <= time.monotonic() - started < 0.5
        upstream.delta_delay = 0
        upstream.reset()
        assert upstream.delta_delay == 0.1  # as created


def test_a_plain_request_is_answered_as_before_by_a_stream_fault() -> None:
    with OpenAIMock() as upstream:
        upstream.enqueue(Fault.stream_error(status=503))
        response = httpx.post(upstream.base_url + "/chat/completions", json=CHAT)
    assert response.status_code == 503
