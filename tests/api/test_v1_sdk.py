"""The OpenAI-compatible face through the official `openai` SDK, the client people already use.

Sync SDK against the real app in process (the SDK's `http_client` is Starlette's TestClient,
itself an httpx2 client, so requests go through the whole ASGI app with its lifespan), async
SDK against a real uvicorn server on loopback. Plain completions, streams, a strategy chosen by
the extension field and by the model name, every error status raised as the SDK's own
exception class, `/v1/models`, and a client that goes away mid-stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from providers import load_settings
from tests.api.conftest import (
    KEY_A,
    KEY_B,
    MakeApp,
    Server,
    server_env,
    write_plugins_toml,
)
from tests.mock_upstreams import Fault, OpenAIMock

UPSTREAM_KEY = "sk-test-v1-upstream"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello, world!"}]
TWELVE: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Final answer: 12"}]


def bearer(key: str = KEY_A) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def extension(response: ChatCompletion | ChatCompletionChunk) -> dict[str, Any]:
    """The `reasoning_agent` field: the SDK keeps fields it does not know as extras."""
    extra = response.model_extra or {}
    value: dict[str, Any] = extra["reasoning_agent"]
    return value


def content_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key=UPSTREAM_KEY) as mock:
        yield mock


@pytest.fixture
def upstream(upstream_server: OpenAIMock) -> OpenAIMock:
    upstream_server.reset()
    return upstream_server


def _providers(directory: Path, upstream: OpenAIMock) -> Path:
    """echo is the default; openai is the real provider, at the mock upstream."""
    return write_plugins_toml(
        directory,
        'default_provider = "echo"\n[providers.openai]\n'
        f'base_url = "{upstream.base_url}"\nmax_retries = 0\n',
    )


@pytest.fixture
def make_sdk_app(
    make_app: MakeApp, upstream: OpenAIMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    monkeypatch.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
    config = _providers(tmp_path, upstream)

    def running(**overrides: Any) -> Any:
        return make_app(providers=load_settings(config), **overrides)

    return running


@pytest.fixture
def app(make_sdk_app: Callable[..., Any]) -> Iterator[TestClient]:
    with make_sdk_app() as client:
        yield client


def sdk(app: TestClient, key: str = KEY_A, **options: Any) -> openai.OpenAI:
    options.setdefault("max_retries", 0)
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=app, **options)


# --- the session --------------------------------------------------------------------------------


def test_a_plain_completion_is_a_chat_completion_recorded_as_a_v1_task(app: TestClient) -> None:
    completion = sdk(app).chat.completions.create(model="echo", messages=HELLO)

    assert isinstance(completion, ChatCompletion)
    assert completion.object == "chat.completion"
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello, world!"
    assert choice.finish_reason == "stop"
    assert completion.model == "echo/echo-1"
    assert completion.usage is not None and completion.usage.total_tokens == 4
    task = extension(completion)
    assert completion.id == f"chatcmpl-{task['task_id']}"
    assert task["strategy"] == "direct" and task["provider"] == "echo" and task["calls"] == 1
    assert task["budget_exhausted"] is False and task["votes"] is None
    # Bearer on a non-/v1 endpoint: the task is in the history, marked with its face.
    record = app.get(f"/query/{task['task_id']}", headers=bearer()).json()
    assert record["source"] == "v1" and record["answer"] == "Hello, world!"
    assert record["prompt"] == "Hello, world!" and record["status"] == "succeeded"


def test_a_stream_is_openai_chunks_then_usage_then_done(app: TestClient) -> None:
    stream = sdk(app).chat.completions.create(
        model="echo", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert all(isinstance(chunk, ChatCompletionChunk) for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert content_of(chunks) == "Hello, world!"
    finishing = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert [chunk.choices[0].finish_reason for chunk in finishing] == ["stop"]
    # The usage chunk is the last one, with no choices; every other chunk has usage null.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 4
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].model == "echo/echo-1"
    task_id = extension(chunks[0])["task_id"]
    assert extension(finishing[0])["task_id"] == task_id
    record = app.get(f"/query/{task_id}", headers=bearer()).json()
    assert record["source"] == "v1" and record["status"] == "succeeded"


def test_without_include_usage_no_chunk_carries_usage(app: TestClient) -> None:
    chunks = list(sdk(app).chat.completions.create(model="echo", messages=HELLO, stream=True))

    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert content_of(chunks) == "Hello, world!"


def test_self_consistency_chosen_by_the_extension_field(app: TestClient) -> None:
    completion = sdk(app).chat.completions.create(
        model="echo",
        messages=TWELVE,
        extra_body={"reasoning_agent": {"strategy": "self_consistency", "samples": 4}},
    )

    task = extension(completion)
    assert completion.choices[0].message.content == "12"
    assert task["strategy"] == "self_consistency" and task["calls"] == 4
    assert task["votes"] == {"12": 4} and task["confidence"] == 1.0


def test_self_consistency_chosen_by_the_model_name(app: TestClient) -> None:
    completion = sdk(app).chat.completions.create(model="self_consistency-4::echo", messages=TWELVE)

    task = extension(completion)
    assert completion.choices[0].message.content == "12"
    assert task["strategy"] == "self_consistency" and task["calls"] == 4
    assert task["votes"] == {"12": 4}


def test_the_extension_field_wins_over_the_model_name(app: TestClient) -> None:
    client = sdk(app)
    fewer = client.chat.completions.create(
        model="self_consistency-8::echo",
        messages=TWELVE,
        extra_body={"reasoning_agent": {"samples": 3}},
    )
    other = client.chat.completions.create(
        model="self_consistency-8::echo",
        messages=TWELVE,
        extra_body={"reasoning_agent": {"strategy": "cot"}},
    )

    assert extension(fewer)["strategy"] == "self_consistency" and extension(fewer)["calls"] == 3
    assert extension(other)["strategy"] == "cot" and extension(other)["calls"] == 1


def test_a_streamed_vote_reports_progress_and_sends_the_answer_as_content(
    app: TestClient,
) -> None:
    chunks = list(
        sdk(app).chat.completions.create(
            model="self_consistency-4::echo", messages=TWELVE, stream=True
        )
    )

    progress = [extension(chunk)["event"] for chunk in chunks if not chunk.choices]
    assert progress.count("call.started") == 4 and progress.count("call.finished") == 4
    assert progress.count("vote") == 4
    assert content_of(chunks) == "12"
    result = extension(chunks[-1])
    assert result["event"] == "result" and result["votes"] == {"12": 4}
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_sdk_stream_helper_accumulates_a_streamed_vote(app: TestClient) -> None:
    # The SDK's own accumulator must take the progress chunks (choices: []) in its stride.
    with sdk(app).chat.completions.stream(
        model="self_consistency-3::echo", messages=TWELVE
    ) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.content == "12"
    assert final.choices[0].finish_reason == "stop"


def test_the_real_upstream_gets_the_requests_options(app: TestClient, upstream: OpenAIMock) -> None:
    completion = sdk(app).chat.completions.create(
        model="openai/gpt-4.1-mini",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "one two three END four"},
        ],
        temperature=0.25,
        max_completion_tokens=40,
        stop=["END"],
        top_p=0.9,  # accepted, not forwarded
        user="someone",
    )

    assert completion.choices[0].message.content == "one two three"
    assert completion.model.startswith("openai/gpt-4.1-mini")
    [sent] = [request.json for request in upstream.requests]
    assert sent["model"] == "gpt-4.1-mini" and sent["temperature"] == 0.25
    assert sent["max_completion_tokens"] == 40 and sent["stop"] == ["END"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    record = app.get(f"/query/{extension(completion)['task_id']}", headers=bearer()).json()
    assert record["params"] == {"temperature": 0.25, "max_tokens": 40, "stop": ["END"]}


def test_a_direct_stream_forwards_the_upstreams_deltas_as_they_come(
    app: TestClient, upstream: OpenAIMock
) -> None:
    words: list[ChatCompletionMessageParam] = [{"role": "user", "content": "  one two three  "}]
    chunks = list(
        sdk(app).chat.completions.create(model="openai/gpt-4.1-mini", messages=words, stream=True)
    )
    plain = sdk(app).chat.completions.create(model="openai/gpt-4.1-mini", messages=words)

    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert deltas == ["one", " two", " three"]  # the upstream's own deltas, trimmed at the ends
    assert "".join(deltas) == plain.choices[0].message.content == "one two three"
    assert [request.json.get("stream") for request in upstream.requests] == [True, None]


def test_adaptive_self_consistency_through_the_extension_field(app: TestClient) -> None:
    completion = sdk(app).chat.completions.create(
        model="self_consistency-20::echo",
        messages=TWELVE,
        extra_body={"reasoning_agent": {"early_stop": True, "first_wave": 3}},
    )

    task = extension(completion)
    assert completion.choices[0].message.content == "12"
    assert task["sampling"]["maximum"] == 20 and task["sampling"]["drawn"] < 20
    assert task["sampling"]["stopped"] in ("settled", "confident")


def test_a_vote_across_providers_through_the_extension_field(app: TestClient) -> None:
    completion = sdk(app).chat.completions.create(
        model="self_consistency::echo",
        messages=TWELVE,
        extra_body={
            "reasoning_agent": {
                "providers": [
                    {"provider": "echo", "samples": 2},
                    {"provider": "openai", "model": "gpt-4.1-mini", "samples": 2},
                ]
            }
        },
    )

    task = extension(completion)
    assert completion.choices[0].message.content == "12" and task["calls"] == 4
    assert {seat.split("/")[0] for seat in task["votes_by_provider"]} == {"echo", "openai"}


def test_the_extension_field_wins_over_the_openai_body(
    app: TestClient, upstream: OpenAIMock
) -> None:
    sdk(app).chat.completions.create(
        model="openai/gpt-4.1-mini",
        messages=HELLO,
        temperature=0.25,
        max_tokens=30,
        extra_body={"reasoning_agent": {"temperature": 0.5}},
    )

    [sent] = [request.json for request in upstream.requests]
    assert sent["temperature"] == 0.5 and sent["max_completion_tokens"] == 30


# --- errors as the SDK's exceptions -------------------------------------------------------------


def test_a_wrong_key_raises_authentication_error(app: TestClient) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk(app, key="not-a-key").chat.completions.create(model="echo", messages=HELLO)

    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"
    assert raised.value.type == "authentication_error"


def test_past_the_rate_limit_raises_rate_limit_error_with_retry_after(
    make_sdk_app: Callable[..., Any],
) -> None:
    with make_sdk_app(rate_limit="2/minute") as app:
        client = sdk(app)
        for _ in range(2):
            client.chat.completions.create(model="echo", messages=HELLO)
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model="echo", messages=HELLO)
        # One budget per key: /query with the same key is refused too, another key is not.
        assert app.get("/query", headers=bearer()).status_code == 429
        assert app.get("/query", headers=bearer(KEY_B)).status_code == 200

    assert raised.value.status_code == 429
    assert raised.value.code == "rate_limit_exceeded"
    headers = raised.value.response.headers
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-remaining"] == "0"


@pytest.mark.parametrize(
    ("model", "options", "code"),
    [
        ("echo", {"n": 2}, "unsupported_parameter"),
        ("cot-3::echo", {}, "invalid_model"),
        ("self_consistency-65::echo", {}, "invalid_model"),
        ("best_of::echo", {}, "unknown_strategy"),
        ("echo", {"extra_body": {"reasoning_agent": {"strategy": "vote"}}}, "unknown_strategy"),
        ("echo", {"tools": [], "tool_choice": "required"}, "unsupported_parameter"),
        ("echo", {"response_format": {"type": "json_object"}}, "unsupported_parameter"),
    ],
)
def test_requests_that_cannot_be_honoured_raise_bad_request_error(
    app: TestClient, model: str, options: dict[str, Any], code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(app).chat.completions.create(model=model, messages=HELLO, **options)

    assert raised.value.status_code == 400 and raised.value.code == code


def test_an_image_raises_bad_request_error(app: TestClient) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(app).chat.completions.create(
            model="echo",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                }
            ],
        )

    assert raised.value.code == "unsupported_content"
    assert "image_url" in raised.value.message


@pytest.mark.parametrize(
    "options",
    [
        {"temperature": 2.5},
        {"max_tokens": 0},
        {"extra_body": {"reasoning_agent": {"sample": 3}}},
        {"extra_body": {"reasoning_agent": {"samples": 65}}},
        {"extra_body": {"temperature": "0.5"}},
    ],
)
def test_invalid_parameters_raise_unprocessable_entity_error(
    app: TestClient, options: dict[str, Any]
) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        sdk(app).chat.completions.create(model="echo", messages=HELLO, **options)

    assert raised.value.status_code == 422 and raised.value.code == "validation_error"


def test_unknown_routes_and_models_raise_not_found_error(app: TestClient) -> None:
    client = sdk(app)
    with pytest.raises(openai.NotFoundError) as route:
        client.embeddings.create(model="echo", input="hello")
    with pytest.raises(openai.NotFoundError) as model:
        client.models.retrieve("anthropic/claude-sonnet-4-6")  # no ANTHROPIC_API_KEY here

    assert route.value.code == "not_found"
    assert model.value.code == "model_not_found" and "cannot serve" in model.value.message


def test_an_upstream_failure_raises_internal_server_error(
    app: TestClient, upstream: OpenAIMock
) -> None:
    upstream.always = Fault.error(500)

    with pytest.raises(openai.InternalServerError) as raised:
        sdk(app).chat.completions.create(model="openai/gpt-4.1-mini", messages=HELLO)

    assert raised.value.status_code == 502 and raised.value.code == "unavailable"
    failed = app.get("/query?source=v1&status=failed", headers=bearer()).json()["data"]
    assert [r["error"]["code"] for r in failed] == ["unavailable"]


def test_a_failure_mid_stream_raises_api_error_and_is_recorded_as_failed(
    app: TestClient, upstream: OpenAIMock
) -> None:
    upstream.always = Fault.error(500)
    seen: list[ChatCompletionChunk] = []

    with pytest.raises(openai.APIError) as raised:
        for chunk in sdk(app).chat.completions.create(
            model="refine::openai/gpt-4.1-mini", messages=HELLO, stream=True
        ):
            seen.append(chunk)

    assert not isinstance(raised.value, openai.APIStatusError)  # the stream was a 200
    assert raised.value.code == "unavailable"
    task_id = extension(seen[0])["task_id"]
    record = app.get(f"/query/{task_id}", headers=bearer()).json()
    assert record["status"] == "failed" and record["error"]["code"] == "unavailable"
    assert record["source"] == "v1"


def test_the_sdk_does_not_retry_what_a_retry_cannot_fix(app: TestClient) -> None:
    # anthropic has no ANTHROPIC_API_KEY: 503 not_configured. The SDK retries 5xx twice by
    # default; x-should-retry: false stops it, so the history holds one failed task, not three.
    client = sdk(app, max_retries=2)
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="anthropic/claude-sonnet-4-6", messages=HELLO)

    assert raised.value.status_code == 503 and raised.value.code == "not_configured"
    assert raised.value.response.headers["x-should-retry"] == "false"
    failed = app.get("/query?source=v1&status=failed", headers=bearer()).json()["data"]
    assert len(failed) == 1


# --- models and the history ---------------------------------------------------------------------


def test_models_lists_each_serving_provider_its_names_and_strategy_forms(
    app: TestClient,
) -> None:
    client = sdk(app)
    models = list(client.models.list())

    assert all(isinstance(model, Model) and model.object == "model" for model in models)
    ids = {model.id: model.owned_by for model in models}
    assert ids["echo/echo-1"] == "echo" and ids["echo"] == "echo"
    assert ids["openai/gpt-4.1-mini"] == "openai" and ids["openai"] == "openai"
    assert ids["self_consistency::openai/gpt-4.1-mini"] == "openai"
    assert {"cot::echo/echo-1", "refine::echo/echo-1"} <= set(ids)
    assert "direct::echo/echo-1" not in ids  # the default strategy needs no prefix
    assert not [i for i in ids if "anthropic" in i]  # cannot serve without its key
    # Every listed id works as `model`.
    for model_id in ("self_consistency::echo/echo-1", "echo"):
        completion = client.chat.completions.create(model=model_id, messages=TWELVE)
        assert completion.choices[0].message.content in ("12", "Final answer: 12")
    one = client.models.retrieve("self_consistency-8::openai/gpt-4.1-mini")
    assert one.id == "self_consistency-8::openai/gpt-4.1-mini" and one.owned_by == "openai"
    assert (one.model_extra or {})["reasoning_agent"] == {
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "strategy": "self_consistency",
    }


def test_query_filters_by_source(app: TestClient) -> None:
    sdk(app).chat.completions.create(model="echo", messages=HELLO)
    app.post("/task", headers=bearer(), json={"prompt": "from /task"})

    v1 = app.get("/query?source=v1", headers=bearer()).json()["data"]
    task = app.get("/query?source=task", headers=bearer()).json()["data"]
    every = app.get("/query", headers=bearer()).json()["data"]

    assert [r["prompt"] for r in v1] == ["Hello, world!"]
    assert [r["prompt"] for r in task] == ["from /task"] and task[0]["source"] == "task"
    assert {r["source"] for r in every} == {"v1", "task"}
    assert app.get("/query?source=web", headers=bearer()).status_code == 422


# --- the async SDK and a real server ------------------------------------------------------------


async def test_the_async_sdk_against_a_real_server(serve: Callable[..., Server]) -> None:
    server = serve()
    async with openai.AsyncOpenAI(
        base_url=f"{server.url}/v1", api_key=KEY_A, max_retries=0
    ) as client:
        plain = await client.chat.completions.create(model="echo", messages=HELLO)
        by_field = await client.chat.completions.create(
            model="echo",
            messages=TWELVE,
            extra_body={"reasoning_agent": {"strategy": "self_consistency", "samples": 3}},
        )
        stream = await client.chat.completions.create(
            model="self_consistency-3::echo",
            messages=TWELVE,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        models = [model.id async for model in client.models.list()]
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="echo", messages=HELLO, n=3)
    async with openai.AsyncOpenAI(
        base_url=f"{server.url}/v1", api_key="not-a-key", max_retries=0
    ) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="echo", messages=HELLO)

    assert plain.choices[0].message.content == "Hello, world!"
    assert extension(by_field)["votes"] == {"12": 3}
    assert content_of(chunks) == "12" and chunks[-1].usage is not None
    progress = [extension(c)["event"] for c in chunks if not c.choices and c.usage is None]
    assert progress.count("vote") == 3
    assert "echo/echo-1" in models
    history = httpx.get(f"{server.url}/query?source=v1", headers=bearer()).json()["data"]
    assert len(history) == 3 and {r["source"] for r in history} == {"v1"}


def test_a_client_that_goes_away_mid_stream_cancels_the_task(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    with OpenAIMock(api_key=UPSTREAM_KEY, latency=5.0) as slow:
        (tmp_path / "slow").mkdir()
        config = write_plugins_toml(
            tmp_path / "slow",
            'default_provider = "echo"\n[providers.openai]\n'
            f'base_url = "{slow.base_url}"\nmax_retries = 0\nmultiple_samples = false\n',
        )
        env = server_env(tmp_path, OPENAI_API_KEY=UPSTREAM_KEY)
        server = serve({**env, "REASONING_AGENT_CONFIG": str(config)})
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY_A, max_retries=0) as client:
            stream = client.chat.completions.create(
                model="self_consistency-4::openai/gpt-4.1-mini", messages=TWELVE, stream=True
            )
            first = next(iter(stream))
            task_id = extension(first)["task_id"]
            deadline = time.monotonic() + 5
            while slow.waiting < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert slow.waiting == 4, server.output()[-3000:]
            stream.close()  # the client goes away
        # The upstream sees its four connections close long before its 5 s answers.
        deadline = time.monotonic() + 3
        while slow.closed_early < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.closed_early == 4
        record = _wait_for_record(server, task_id)

    assert record["status"] == "cancelled" and record["error"]["code"] == "cancelled"
    assert record["source"] == "v1" and record["calls"] == 4


def _wait_for_record(server: Server, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.url}/query/{task_id}", headers=bearer())
        if response.status_code == 200:
            record: dict[str, Any] = response.json()
            return record
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} was not recorded:\n{server.output()[-4000:]}")
