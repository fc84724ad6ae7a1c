"""`/v1/chat/completions` on the wire: the model-name grammar, messages into a task, which
OpenAI parameters are honoured, refused or ignored, and the chunk sequence of a stream.

The SDK's view of the same endpoints is tests/api/test_v1_sdk.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import api.v1.stream
from api.errors import APIError
from api.v1.translate import ModelChoice, parse_model
from providers import load_settings
from tests.api.conftest import MakeApp, headers, write_plugins_toml
from tests.providers.plugin_helpers import simple_plugin, unique

HELLO = [{"role": "user", "content": "Hello, world!"}]
TWELVE = [{"role": "user", "content": "Final answer: 12"}]


def chat(client: TestClient, **body: Any) -> Any:
    body.setdefault("model", "echo")
    body.setdefault("messages", HELLO)
    return client.post("/v1/chat/completions", headers=headers(), json=body)


def stream_chunks(client: TestClient, **body: Any) -> list[Any]:
    """The stream's data lines, decoded (`[DONE]` kept as the string)."""
    response = chat(client, stream=True, **body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n") if line.startswith("data: ")]
    return [line[6:] if line == "data: [DONE]" else json.loads(line[6:]) for line in lines]


def content(chunks: list[Any]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in chunks
        if isinstance(c, dict) and c.get("choices")
    )


def record_of(client: TestClient, completion: dict[str, Any]) -> dict[str, Any]:
    task_id = completion["reasoning_agent"]["task_id"]
    record: dict[str, Any] = client.get(f"/query/{task_id}", headers=headers()).json()
    return record


# --- the model name -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("echo", ModelChoice("echo", None)),
        ("echo/echo-9", ModelChoice("echo", "echo-9")),
        ("openai/gpt-4.1-mini", ModelChoice("openai", "gpt-4.1-mini")),
        ("claude/claude-sonnet-4-6", ModelChoice("claude", "claude-sonnet-4-6")),  # an alias
        ("claude", ModelChoice("claude", None)),
        ("gpt-4.1-mini", ModelChoice(None, "gpt-4.1-mini")),
        # Not a provider before the slash: a model id of the default provider, as it is.
        ("meta-llama/llama-3-70b", ModelChoice(None, "meta-llama/llama-3-70b")),
        (
            "openai_compatible/meta-llama/llama-3",
            ModelChoice("openai_compatible", "meta-llama/llama-3"),
        ),
        # OpenAI fine-tunes hold '::' but are no strategy form.
        ("ft:gpt-4o-mini:my-org::abc123", ModelChoice(None, "ft:gpt-4o-mini:my-org::abc123")),
        ("llama3.1:8b", ModelChoice(None, "llama3.1:8b")),
        (
            "self_consistency-8::openai/gpt-4.1-mini",
            ModelChoice("openai", "gpt-4.1-mini", "self_consistency", samples=8),
        ),
        (
            "refine-2::anthropic/claude-sonnet-4-6",
            ModelChoice("anthropic", "claude-sonnet-4-6", "refine", rounds=2),
        ),
        ("refine-0::echo", ModelChoice("echo", None, "refine", rounds=0)),
        ("cot::gpt-4.1-mini", ModelChoice(None, "gpt-4.1-mini", "cot")),
        ("direct::ft:gpt-4o:org::x1", ModelChoice(None, "ft:gpt-4o:org::x1", "direct")),
    ],
)
def test_the_model_name_grammar(client: TestClient, model: str, expected: ModelChoice) -> None:
    assert parse_model(model, client.app.state.registry) == expected  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("model", "code", "says"),
    [
        ("cot::", "invalid_model", "no model after '::'"),
        ("echo/", "invalid_model", "send 'echo' alone"),
        ("cot-1::echo", "invalid_model", "cot takes no -N"),
        ("direct-3::echo", "invalid_model", "-N sets the self_consistency (samples)"),
        ("self_consistency-0::echo", "invalid_model", "samples, which must be between 1 and 64"),
        ("refine-11::echo", "invalid_model", "rounds, which must be between 0 and 10"),
        ("Direct::echo", "unknown_strategy", "available strategies: direct, cot"),
        ("sc::echo", "unknown_strategy", "unknown strategy 'sc'"),
    ],
)
def test_bad_model_names_are_400_before_anything_runs(
    client: TestClient, model: str, code: str, says: str
) -> None:
    with pytest.raises(APIError) as raised:
        parse_model(model, client.app.state.registry)  # type: ignore[attr-defined]
    response = chat(client, model=model)

    assert raised.value.code == code and says in raised.value.message
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": raised.value.message,
        "type": "invalid_request_error",
        "code": code,
    }
    assert client.get("/query", headers=headers()).json()["data"] == []  # nothing recorded


def test_a_bare_model_goes_to_the_default_provider(client: TestClient) -> None:
    completion = chat(client, model="some-model").json()

    assert completion["model"] == "echo/some-model"
    assert completion["reasoning_agent"]["provider"] == "echo"


# --- messages -----------------------------------------------------------------------------------


def test_earlier_turns_come_before_the_last_user_message_as_a_transcript(
    client: TestClient,
) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi, I'm Ann.", "name": "ann"},
        {"role": "assistant", "content": "Hello Ann!"},
        {"role": "developer", "content": "Use first names."},
        {"role": "user", "content": "What is my name?"},
    ]
    completion = chat(client, messages=messages).json()

    # echo answers with the prompt it was given.
    assert completion["choices"][0]["message"]["content"] == (
        "The conversation so far, for context:\n\n"
        "User (ann): Hi, I'm Ann.\n\n"
        "Assistant: Hello Ann!\n\n"
        "Reply to the user's latest message:\n\n"
        "What is my name?"
    )
    record = record_of(client, completion)
    assert record["system"] == "You are terse.\n\nUse first names."


def test_a_single_user_message_is_the_prompt_as_it_is(client: TestClient) -> None:
    completion = chat(client, messages=[{"role": "user", "content": "  just this  "}]).json()

    assert record_of(client, completion)["prompt"] == "  just this  "
    assert record_of(client, completion)["system"] is None


def test_text_parts_are_joined_and_tool_turns_are_context(client: TestClient) -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "So,"}, {"type": "text", "text": "a coat?"}],
        },
    ]
    answer = chat(client, messages=messages).json()["choices"][0]["message"]["content"]

    assert answer == (
        "The conversation so far, for context:\n\n"
        "User: Weather in Paris?\n\n"
        'Assistant called tool weather({"city": "Paris"})\n\n'
        "Tool result: 18 C, sunny\n\n"
        "Reply to the user's latest message:\n\n"
        "So,\na coat?"
    )


@pytest.mark.parametrize(
    ("messages", "status", "code"),
    [
        ([{"role": "system", "content": "Be brief."}], 400, "invalid_messages"),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hel"}],
            400,
            "invalid_messages",
        ),
        ([{"role": "user", "content": "   "}], 422, "validation_error"),
        ([{"role": "user", "content": []}], 422, "validation_error"),
        ([{"role": "user", "content": [{"type": "text"}]}], 422, "validation_error"),
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
            400,
            "unsupported_content",
        ),
        ([], 422, "validation_error"),
        ([{"role": "robot", "content": "hi"}], 422, "validation_error"),
        ([{"role": "user", "content": 5}], 422, "validation_error"),
        ("hi", 422, "validation_error"),
    ],
)
def test_messages_that_make_no_task_are_refused(
    client: TestClient, messages: Any, status: int, code: str
) -> None:
    response = chat(client, messages=messages)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_a_conversation_longer_than_max_prompt_chars_is_422(make_app: MakeApp) -> None:
    with make_app(max_prompt_chars=50) as client:
        messages = [
            {"role": "user", "content": "x" * 30},
            {"role": "assistant", "content": "y" * 30},
            {"role": "user", "content": "z"},
        ]
        response = chat(client, messages=messages)

    assert response.status_code == 422
    assert "MAX_PROMPT_CHARS" in response.json()["error"]["message"]


# --- parameters: honoured, refused, ignored -----------------------------------------------------


def test_stop_and_max_tokens_reach_every_call(client: TestClient) -> None:
    words = [{"role": "user", "content": "one two three four"}]
    stopped = chat(client, messages=words, stop="three").json()
    single = chat(client, messages=words, stop=["four", "three"]).json()
    cut = chat(client, messages=words, max_tokens=2).json()
    newer_wins = chat(client, messages=words, max_tokens=1, max_completion_tokens=3).json()

    assert stopped["choices"][0]["message"]["content"] == "one two"
    assert single["choices"][0]["message"]["content"] == "one two"
    assert cut["choices"][0]["message"]["content"] == "one two"
    assert newer_wins["choices"][0]["message"]["content"] == "one two three"
    assert record_of(client, stopped)["params"] == {"stop": ["three"]}
    assert record_of(client, newer_wins)["params"] == {"max_tokens": 3}


def test_unknown_and_ignored_parameters_are_accepted(client: TestClient) -> None:
    response = chat(
        client,
        n=1,
        top_p=0.5,
        frequency_penalty=0.1,
        presence_penalty=0,
        seed=7,
        user="u-1",
        logprobs=False,
        logit_bias={"50256": -100},
        metadata={"team": "a"},
        service_tier="auto",
        store=False,
        reasoning_effort="low",
        response_format={"type": "text"},
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        tool_choice="auto",
        parallel_tool_calls=True,
        functions=[{"name": "g"}],
        function_call="none",
        some_future_parameter={"x": [1, 2]},
        stream_options={"include_usage": True},  # without stream: nothing to do
    )

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello, world!"


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": "0.5"},
        {"temperature": 2.5},
        {"stream": "yes"},
        {"stream": 1},
        {"n": "2"},
        {"n": 0},
        {"max_tokens": 1.5},
        {"max_completion_tokens": 0},
        {"stop": 5},
        {"stop": ["a", "b", "c", "d", "e"]},
        {"top_p": "high"},
        {"seed": 1.5},
        {"logprobs": "no"},
        {"stream_options": {"include_usage": "yes"}},
        {"model": ""},
        {"model": 4},
        {"reasoning_agent": {"strategy": "cot", "temprature": 0.2}},
        {"reasoning_agent": {"temperature": "0.2"}},
        {"reasoning_agent": {"trace": 1}},
        {"reasoning_agent": {"samples": "3"}},
        {"reasoning_agent": {"rounds": 11}},
        {"reasoning_agent": {"max_calls": 0}},
        {"reasoning_agent": ["cot"]},
    ],
)
def test_a_wrong_type_or_range_for_a_known_parameter_is_422(
    client: TestClient, fields: dict[str, Any]
) -> None:
    response = chat(client, **fields)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["type"] == "invalid_request_error"
    assert f"body.{next(iter(fields))}" in error["message"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"n": 2}, "n: 2 choices asked"),
        ({"tool_choice": "required", "tools": [{"type": "function"}]}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
        ({"function_call": {"name": "f"}}, "function_call"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
    ],
)
def test_what_cannot_be_honoured_is_400_not_ignored(
    client: TestClient, fields: dict[str, Any], says: str
) -> None:
    response = chat(client, **fields)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_parameter"
    assert response.json()["error"]["message"].startswith(says)


def test_trace_and_budgets_through_the_extension_field(client: TestClient) -> None:
    traced = chat(
        client,
        model="self_consistency-4::echo",
        messages=TWELVE,
        reasoning_agent={"trace": True, "max_calls": 2},
    ).json()

    task = traced["reasoning_agent"]
    assert task["calls"] == 2 and task["budget_exhausted"] is True
    assert [step["purpose"] for step in task["steps"]] == ["sample 1", "sample 2"]
    assert record_of(client, traced)["params"] == {"samples": 4, "max_calls": 2}


def test_a_deadline_ends_the_task_with_its_best_answer_so_far(
    make_app: MakeApp, tmp_path: Path
) -> None:
    config = write_plugins_toml(
        tmp_path, 'default_provider = "echo"\n[providers.echo.options]\nlatency = 0.3\n'
    )
    with make_app(providers=load_settings(config)) as client:
        completion = chat(
            client, model="refine-1::echo", reasoning_agent={"deadline_ms": 450}
        ).json()
        record = record_of(client, completion)

    task = completion["reasoning_agent"]
    assert completion["choices"][0]["message"]["content"] == "Hello, world!"  # the draft
    assert task["budget_exhausted"] is True and task["budget_reason"] == "deadline"
    assert record["params"] == {"rounds": 1, "deadline_ms": 450}


def test_the_cost_and_a_cost_budget(client: TestClient) -> None:
    # Every TaskOptions option is an extension key: max_cost_usd came with the price table.
    completion = chat(client, reasoning_agent={"max_cost_usd": 1.0}).json()

    assert completion["reasoning_agent"]["cost_usd"] == 0.0  # echo is free
    assert record_of(client, completion)["params"] == {"max_cost_usd": 1.0}


def test_without_trace_no_steps_are_sent(client: TestClient) -> None:
    assert chat(client).json()["reasoning_agent"]["steps"] is None


def test_a_temperature_the_strategy_refuses_is_400_and_a_failed_task(
    client: TestClient,
) -> None:
    response = chat(client, model="self_consistency::echo", temperature=0)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


# --- streams ------------------------------------------------------------------------------------


def test_the_chunk_sequence_of_a_streamed_vote(client: TestClient) -> None:
    chunks = stream_chunks(
        client,
        model="self_consistency-2::echo",
        messages=TWELVE,
        stream_options={"include_usage": True},
        reasoning_agent={"trace": True},
    )

    assert chunks[-1] == "[DONE]"
    *objects, _ = chunks
    assert {c["object"] for c in objects} == {"chat.completion.chunk"}
    assert all("usage" in c for c in objects)
    kinds = []
    for c in objects:
        if c["choices"]:
            choice = c["choices"][0]
            kinds.append(
                "role"
                if "role" in choice["delta"]
                else "finish"
                if choice["finish_reason"]
                else "content"
            )
        else:
            kinds.append("usage" if c["usage"] else c["reasoning_agent"]["event"])
    assert kinds == [
        "role",
        "call.started",
        "call.started",
        "call.finished",
        "vote",
        "call.finished",
        "vote",
        "content",
        "finish",
        "usage",
    ]
    accepted = objects[0]["reasoning_agent"]
    assert accepted["event"] == "task.accepted" and accepted["strategy"] == "self_consistency"
    result = objects[-2]["reasoning_agent"]
    assert result["event"] == "result" and result["confidence"] == 1.0
    assert len(result["steps"]) == 2  # trace: the steps come with the result
    record = client.get(f"/query/{result['task_id']}", headers=headers()).json()
    assert objects[-1]["usage"] == record["usage"] and record["usage"]["total_tokens"] > 0


def test_progress_false_streams_content_chunks_only(client: TestClient) -> None:
    chunks = stream_chunks(
        client,
        model="self_consistency-3::echo",
        messages=TWELVE,
        reasoning_agent={"progress": False},
    )

    assert all(c["choices"] for c in chunks[:-1])
    assert content(chunks) == "12"


def test_a_streamed_cot_sends_only_the_extracted_answer(client: TestClient) -> None:
    chunks = stream_chunks(client, model="cot::echo", messages=TWELVE)

    assert content(chunks) == "12"
    assert all(c["choices"] for c in chunks[:-1])  # one call: no progress chunks


def test_an_idle_stream_is_kept_open_with_comments(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.v1.stream, "HEARTBEAT_SECONDS", 0.05)
    config = write_plugins_toml(
        tmp_path, 'default_provider = "echo"\n[providers.echo.options]\nlatency = 0.3\n'
    )
    with make_app(providers=load_settings(config)) as client:
        response = chat(client, stream=True)

    assert ": ping\n\n" in response.text
    assert response.text.endswith("data: [DONE]\n\n")


# A provider that streams its reply in pieces, with whitespace around it (the engine trims the
# answer; the content deltas must add up to exactly that answer).
CHUNKY = """
import agent_core
from providers import hookimpl

PIECES = ["  \\n", "The answer", " is", " 42.", "  ", "\\n"]


class Chunky(agent_core.Provider):
    def __init__(self, *, name, config):
        self.name = name
        self.model = config.model or "chunky-1"

    async def complete(self, request):
        return agent_core.Completion("".join(PIECES), request.model or self.model)

    async def stream(self, request):
        for piece in PIECES:
            yield piece
        yield agent_core.Completion("".join(PIECES), request.model or self.model)

    async def aclose(self):
        pass


@hookimpl
def register_providers(register):
    register(Chunky, name="chunky")
"""


@pytest.fixture
def chunky(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    site = tmp_path / "site"
    simple_plugin(site, "chunky", CHUNKY, module=unique("chunky_provider"))
    monkeypatch.syspath_prepend(str(site))
    with make_app(providers=load_settings(write_plugins_toml(tmp_path))) as client:
        yield client


def test_a_direct_reply_is_forwarded_as_it_streams_and_adds_up_to_the_answer(
    chunky: TestClient,
) -> None:
    chunks = stream_chunks(chunky, model="chunky", messages=HELLO)
    plain = chat(chunky, model="chunky", messages=HELLO).json()

    deltas = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert deltas == ["The answer", " is", " 42."]
    assert content(chunks) == plain["choices"][0]["message"]["content"] == "The answer is 42."


def test_a_refine_streams_progress_then_the_last_revision_as_it_arrives(
    chunky: TestClient,
) -> None:
    chunks = stream_chunks(chunky, model="refine-1::chunky", messages=HELLO)

    progress = [c["reasoning_agent"]["event"] for c in chunks[:-1] if not c["choices"]]
    assert progress == ["call.started", "call.finished"] * 3
    # The revision (the final call) streams after the critique has finished.
    contents = [
        c["choices"][0]["delta"]["content"]
        for c in chunks[:-1]
        if c["choices"] and c["choices"][0]["delta"].get("content")
    ]
    assert contents == ["The answer", " is", " 42."]
    assert chunks[-2]["reasoning_agent"]["calls"] == 3


def test_an_upstream_failure_in_a_stream_is_an_error_chunk_then_the_end(
    make_app: MakeApp, tmp_path: Path
) -> None:
    # No OPENAI_API_KEY: the openai provider cannot serve, the stream says so and ends.
    with make_app() as client:
        chunks = stream_chunks(client, model="openai/gpt-4.1-mini")
        task_id = chunks[0]["reasoning_agent"]["task_id"]
        record = client.get(f"/query/{task_id}", headers=headers()).json()

    assert chunks[-1] == {
        "error": {
            "message": chunks[-1]["error"]["message"],
            "type": "provider_not_configured",
            "code": "not_configured",
        }
    }
    assert "[DONE]" not in chunks
    assert record["status"] == "failed" and record["source"] == "v1"


# --- models -------------------------------------------------------------------------------------


def test_retrieve_says_what_an_id_selects(client: TestClient) -> None:
    def retrieve(model_id: str) -> Any:
        return client.get(f"/v1/models/{model_id}", headers=headers())

    bare = retrieve("some/model").json()
    voted = retrieve("self_consistency-5::echo").json()
    unusable = retrieve("openai/gpt-4.1-mini")  # no OPENAI_API_KEY
    bad = retrieve("vote::echo")

    assert bare["owned_by"] == "echo" and bare["reasoning_agent"]["model"] == "some/model"
    assert voted["reasoning_agent"] == {
        "provider": "echo",
        "model": "echo-1",
        "strategy": "self_consistency",
    }
    assert unusable.status_code == 404 and unusable.json()["error"]["code"] == "model_not_found"
    assert bad.status_code == 404 and "unknown strategy" in bad.json()["error"]["message"]
