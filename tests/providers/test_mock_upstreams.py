"""The mock upstreams themselves: fault queue order, recording, auth, the child-process mode.

Other tests trust these mocks to speak the providers' wire formats; the official SDKs parsing
their answers (in the parity tests) is the main check of that, these cover the scripting."""

from __future__ import annotations

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
