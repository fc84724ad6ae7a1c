"""POST /task against an upstream that accepts and never answers (OPENAI_BASE_URL at a silent
listener): 504 `timeout` after the call's deadline, not after every retry's full timeout, with
the time really waited in the message. Both transports."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from providers import load_settings
from tests.api.conftest import MakeApp, run_task, write_plugins_toml
from tests.mock_upstreams import SilentListener


@pytest.fixture
def silent() -> Iterator[SilentListener]:
    with SilentListener() as listener:
        yield listener


@pytest.fixture(params=["lean", "sdk"])
def client(
    request: pytest.FixtureRequest,
    make_app: MakeApp,
    silent: SilentListener,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-silent")
    monkeypatch.setenv("OPENAI_BASE_URL", silent.base_url)
    config = write_plugins_toml(
        tmp_path,
        'default_provider = "openai"\n'
        "[providers.openai]\n"
        f'transport = "{request.param}"\n'
        # retries allowed, but after a timed-out attempt no whole attempt fits the deadline
        "timeout = 0.5\n"
        "deadline = 0.8\n"
        "max_retries = 2\n",
    )
    with make_app(providers=load_settings(config)) as test_client:
        yield test_client


def test_a_silent_upstream_is_504_after_the_deadline(
    client: TestClient, silent: SilentListener
) -> None:
    started = time.monotonic()
    response = run_task(client)
    waited = time.monotonic() - started
    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert error["code"] == "timeout"
    # The time really waited: at least the timeout, at most what this test saw (one decimal).
    reported = re.match(
        r"openai: no answer from the upstream after (\d+\.\d) s \(1 attempt;", error["message"]
    )
    assert reported is not None, error["message"]
    assert 0.5 <= float(reported[1]) <= waited + 0.05, error["message"]
    assert 0.5 <= waited < 0.8 + 0.5, waited
    assert silent.accepted == 1


def test_a_vote_against_a_silent_upstream_takes_one_deadline_not_one_per_sample(
    client: TestClient, silent: SilentListener
) -> None:
    started = time.monotonic()
    response = run_task(client, strategy="self_consistency", samples=4)
    assert response.status_code == 504
    assert time.monotonic() - started < 0.8 + 0.5
