"""A key never appears in clear: not in logs, the database, metrics or error bodies."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.redaction import REDACTED, redact
from tests.api.conftest import ADMIN_KEY, KEY_A, KEY_B, MakeApp, Server, headers, server_env

KEYS = (KEY_A, KEY_B, ADMIN_KEY)


def test_keys_never_reach_logs_database_metrics_or_bodies(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    env = server_env(tmp_path, LOG_FORMAT="json", LOG_LEVEL="DEBUG", RATE_LIMIT="5/minute")
    server = serve(env)
    bodies: list[str] = []
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for key in KEYS:
            bodies.append(http.post("/task", headers=headers(key), json={"prompt": "hi"}).text)
            bodies.append(http.get("/query", headers=headers(key)).text)
        bodies.append(http.get("/query/nope", headers=headers(KEY_A)).text)
        bodies.append(http.post("/task", headers=headers(KEY_A), json={}).text)
        bodies.append(http.post("/task", headers=headers(KEY_A + "x"), json={}).text)
        bodies.extend(http.get("/providers", headers=headers(KEY_B)).text for _ in range(6))
        metrics = http.get("/metrics", headers=headers(ADMIN_KEY)).text
    server.stop()

    log = server.output()
    database = b"".join(path.read_bytes() for path in (tmp_path / "server-data").glob("*"))
    assert '"status": 429' in log  # the run did reach the rate limit, and logged it
    for key in KEYS:
        assert key not in log
        assert key.encode() not in database
        assert key not in metrics
        assert all(key not in body for body in bodies)


def test_a_key_logged_by_mistake_is_redacted(
    make_app: MakeApp, capfd: pytest.CaptureFixture[str]
) -> None:
    with make_app(log_format="json"):
        logging.getLogger("api.test").warning("oops, the header was %s", KEY_A)

    err = capfd.readouterr().err
    assert "oops, the header was [REDACTED]" in err
    assert KEY_A not in err


def test_provider_secrets_in_error_messages_are_redacted() -> None:
    text = redact("upstream said: invalid key sk-abcdefghijklmnop1234 for postgresql://u:pw@h/db")

    assert "sk-abcdefghijklmnop1234" not in text
    assert ":pw@" not in text


@given(st.text(alphabet="sk-_ aA9.:/\n\u00e9", max_size=40))
def test_provider_style_keys_are_masked_at_a_word_boundary_as_the_plain_pattern_does(
    text: str,
) -> None:
    # The pattern is written literal first for speed; it must mask exactly what `\bsk-...` does.
    plain = re.sub(r"\bsk-[A-Za-z0-9_\-]{8,}", REDACTED, text)
    assert redact(text) == plain
