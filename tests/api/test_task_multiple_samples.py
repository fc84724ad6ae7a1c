"""POST /task self_consistency through OPENAI_BASE_URL at servers that do not honour `n`:
every vote arrives, on both transports, whether the server ignores `n`, answers fewer
choices, or refuses it with a 400."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from providers import load_settings
from tests.api.conftest import MakeApp, headers, run_task, write_plugins_toml
from tests.mock_upstreams import OpenAIMock

KEY = "sk-test-upstream-n"


@pytest.fixture
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock(api_key=KEY) as mock:
        yield mock


@pytest.fixture(params=["lean", "sdk"])
def client(
    request: pytest.FixtureRequest,
    make_app: MakeApp,
    upstream: OpenAIMock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    # The README's way to point the openai provider elsewhere: OPENAI_BASE_URL.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    config = write_plugins_toml(
        tmp_path,
        'default_provider = "openai"\n'
        "[providers.openai]\n"
        f'transport = "{request.param}"\n'
        "max_retries = 0\n",
    )
    with make_app(providers=load_settings(config)) as test_client:
        yield test_client


def _vote(client: TestClient) -> dict[str, object]:
    response = run_task(
        client, prompt="Final answer: 4", strategy="self_consistency", samples=8, trace=True
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize(
    ("max_choices", "refuse_n", "calls"),
    [
        (1, None, 8),  # ignores n: one call with n=8 answered 1, then 7 single calls
        (3, None, 6),  # answers fewer: 3 from the batch, 5 single calls
        (None, OpenAIMock.REFUSE_N_OPENAI, 9),  # refuses n: the 400, then 8 single calls
        (None, None, 1),  # honours n: one call
    ],
)
def test_self_consistency_gets_all_eight_votes(
    client: TestClient,
    upstream: OpenAIMock,
    max_choices: int | None,
    refuse_n: str | None,
    calls: int,
) -> None:
    upstream.max_choices, upstream.refuse_n = max_choices, refuse_n
    body = _vote(client)
    assert body["votes"] == {"4": 8} and body["calls"] == 8
    assert upstream.calls == calls
    steps = body["steps"]
    assert isinstance(steps, list) and len(steps) == 8
    if calls > 1:
        assert any("single call" in (step["note"] or "") for step in steps)
    # The record keeps the trace with its notes.
    record = client.get(f"/query/{body['id']}", headers=headers())
    assert [s["note"] for s in record.json()["steps"]] == [s["note"] for s in steps]
