"""What the hostile-client suite (tests/api/test_hostile_*.py) shares.

The suite's service is the real app with `openai` as its default provider, served by the mock
OpenAI upstream on 127.0.0.1 (tests/mock_upstreams): a request that names no provider goes
through the real provider, transport and history store, and since the mock always answers, a
502 (or any 5xx) in this suite is a bug of ours. The rate limit is high enough never to bite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from agent_core import LIMITS, IntRange
from api.app import create_app
from providers import ProvidersSettings, load_settings
from tests.api.conftest import service_settings, write_plugins_toml
from tests.mock_upstreams import OpenAIMock

UPSTREAM_KEY = "sk-hostile-suite-upstream"
# Not OPENAI_API_KEY: the API tests' autouse fixture clears OPENAI_* around every test, while
# this suite's app (and its registry) lives for a whole module.
UPSTREAM_KEY_ENV = "RA_HOSTILE_UPSTREAM_KEY"
RATE_LIMIT = "1000000/minute"

# The integer task options and their ranges, the engine's own (agent_core.LIMITS).
ENGINE_INT_LIMITS: Mapping[str, IntRange] = {
    name: getattr(LIMITS, name)
    for name in ("samples", "rounds", "max_tokens", "max_calls", "max_total_tokens")
}


def mock_openai_providers(directory: Path, base_url: str) -> ProvidersSettings:
    """plugins.toml: `openai` is the default provider, at the mock upstream, no retries."""
    text = (
        'default_provider = "openai"\n'
        "[providers.openai]\n"
        f'base_url = "{base_url}"\n'
        f'api_key_env = "{UPSTREAM_KEY_ENV}"\n'
        "max_retries = 0\n"
        "timeout = 10\n"
    )
    return load_settings(write_plugins_toml(directory, text))


@contextlib.contextmanager
def hostile_app(directory: Path, **settings: Any) -> Iterator[tuple[FastAPI, OpenAIMock]]:
    """The suite's app (not started: its lifespan is the caller's) and its mock upstream.

    The upstream key is in the environment for the whole block: the registry reads it when
    the app's lifespan starts."""
    with (
        OpenAIMock(api_key=UPSTREAM_KEY) as upstream,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)
        app = create_app(
            service_settings(directory, rate_limit=RATE_LIMIT, **settings),
            mock_openai_providers(directory, upstream.base_url),
        )
        yield app, upstream


def error_envelope(body: object) -> dict[str, Any]:
    """The `error` object of an error body, after checking the envelope's shape."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict), body
    assert {"message", "type", "code"} <= set(error), body
    assert all(isinstance(error[name], str) and error[name] for name in ("message", "type", "code"))
    return error
