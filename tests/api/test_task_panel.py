"""A vote across providers through POST /task: samples from two mock upstreams (OpenAI's and
Anthropic's wire formats) of different accuracy, the vote broken down by provider and model; a
member that fails or is not configured costs its samples, not the task."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from providers import load_settings
from tests.api.conftest import MakeApp, headers, run_task, write_plugins_toml
from tests.mock_upstreams import AnthropicMock, Fault, OpenAIMock

OPENAI_KEY = "sk-test-panel-openai"
ANTHROPIC_KEY = "sk-ant-test-panel"


@pytest.fixture
def upstreams() -> Iterator[tuple[OpenAIMock, AnthropicMock]]:
    # openai is always right; anthropic right every other time.
    alternate = itertools.cycle(["Final answer: 4", "Final answer: 5"])
    with (
        OpenAIMock(api_key=OPENAI_KEY, responder=lambda body: "Final answer: 4") as openai,
        AnthropicMock(api_key=ANTHROPIC_KEY, responder=lambda body: next(alternate)) as claude,
    ):
        yield openai, claude


@pytest.fixture
def client(
    make_app: MakeApp,
    upstreams: tuple[OpenAIMock, AnthropicMock],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    openai, claude = upstreams
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    config = write_plugins_toml(
        tmp_path,
        'default_provider = "openai"\n'
        f'[providers.openai]\nbase_url = "{openai.base_url}"\nmax_retries = 0\n'
        f'[providers.anthropic]\nbase_url = "{claude.base_url}"\nmax_retries = 0\n',
    )
    with make_app(providers=load_settings(config)) as test_client:
        yield test_client


def _panel(client: TestClient, **extra: Any) -> Any:
    return run_task(
        client,
        prompt="What is 2 + 2?",
        strategy="self_consistency",
        providers=[
            {"provider": "openai", "samples": 4},
            {"provider": "anthropic", "model": "claude-sonnet-4-6", "samples": 4},
        ],
        trace=True,
        **extra,
    )


def test_the_vote_is_broken_down_by_provider_and_model(
    client: TestClient, upstreams: tuple[OpenAIMock, AnthropicMock]
) -> None:
    response = _panel(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["votes"] == {"4": 6, "5": 2} and body["answer"] == "4"
    breakdown = body["votes_by_provider"]
    openai_seat = next(seat for seat in breakdown if seat.startswith("openai/"))
    assert breakdown[openai_seat] == {"4": 4}
    # The model that answered, as the upstream reported it (a dated snapshot of the one asked).
    claude_seat = next(seat for seat in breakdown if seat.startswith("anthropic/claude-sonnet-4-6"))
    assert breakdown[claude_seat] == {"4": 2, "5": 2}
    # Each member answered its own samples through its own client.
    openai, claude = upstreams
    assert (openai.calls, claude.calls) == (4, 4)
    assert {step["provider"] for step in body["steps"]} == {"openai", "anthropic"}
    # The record keeps the panel in its params, and who took part.
    record = client.get(f"/query/{body['id']}", headers=headers()).json()
    assert [seat["samples"] for seat in record["params"]["providers"]] == [4, 4]
    assert record["providers_used"] == ["anthropic", "openai"]
    # /query finds the vote by any provider that took part.
    for name in ("openai", "anthropic"):
        page = client.get(f"/query?provider={name}", headers=headers()).json()["data"]
        assert [task["id"] for task in page] == [body["id"]], name
    assert client.get("/query?provider=anth", headers=headers()).json()["data"] == []


def test_a_member_that_fails_costs_its_votes_not_the_task(
    client: TestClient, upstreams: tuple[OpenAIMock, AnthropicMock]
) -> None:
    upstreams[1].always = Fault.error(500)
    body = _panel(client).json()
    assert body["votes"] == {"4": 4}
    assert list(body["votes_by_provider"]) == [next(iter(body["votes_by_provider"]))]
    assert sum(step["error"] == "unavailable" for step in body["steps"]) == 4


def test_every_member_failing_fails_the_task(
    client: TestClient, upstreams: tuple[OpenAIMock, AnthropicMock]
) -> None:
    for upstream in upstreams:
        upstream.always = Fault.error(500)
    response = _panel(client)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "unavailable"


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"strategy": "cot"}, "invalid_panel"),
        ({"samples": 5}, "invalid_panel"),
    ],
)
def test_a_panel_that_cannot_vote_is_refused(
    client: TestClient, extra: dict[str, Any], code: str
) -> None:
    body = {
        "prompt": "x",
        "strategy": "self_consistency",
        "providers": [{"provider": "openai", "samples": 4}, {"provider": "echo", "samples": 4}],
        **extra,
    }
    response = client.post("/task", headers=headers(), json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_panel_seats_are_validated(client: TestClient) -> None:
    for providers in (
        [],
        [{"provider": "openai", "samples": 0}],
        [{"provider": "openai", "samples": 40}, {"provider": "echo", "samples": 40}],
        [{"provider": "nope", "samples": 2}],
    ):
        response = run_task(client, strategy="self_consistency", providers=providers)
        assert response.status_code in (400, 422), (providers, response.text)
