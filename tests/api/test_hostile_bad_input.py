"""Bad input, table-driven: every row is refused with its documented 4xx and the error envelope
`{"error": {"message", "type", "code"}}` (never a 5xx), and the same app instance then still
answers a normal task.

The rows: malformed and non-object JSON, wrong types, huge and negative numbers, NaN and the
infinities (JSON tokens and overflowing exponents), NUL and invalid UTF-8 in bodies, query
parameters, paths and headers, oversized and deeply nested bodies, bodies that are not sent as
JSON, unknown routes and methods, and bad `GET /query` parameters. A few rows are hostile but
legitimate (a NUL inside a JSON string, a search for bytes nobody stored, a huge `limit`): they
are answered normally, and say so.

The app is the hostile suite's: `openai` at the mock upstream on 127.0.0.1 by default, SQLite,
and for the rows about text a database may refuse, PostgreSQL too.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import KEY_A, create_pg_database, drop_pg_database
from tests.api.hostile_support import (
    error_envelope,
    hostile_app,
)

MAX_BODY_BYTES = 256 * 1024  # the default MAX_BODY_BYTES
JSON = "application/json"


@dataclass(frozen=True)
class Row:
    """One hostile request and the answer it must get."""

    method: str
    path: str
    status: int
    code: str | None  # the error code; None for a 2xx
    body: bytes | None = None
    content_type: str | bytes | None = JSON
    headers: Mapping[str, str | bytes] = field(default_factory=dict)
    key: str | bytes | None = KEY_A


def task(body: bytes | str, status: int = 422, code: str | None = "validation_error") -> Row:
    raw = body.encode() if isinstance(body, str) else body
    return Row("POST", "/task", status, code, body=raw)


def task_json(status: int = 422, code: str | None = "validation_error", **fields: Any) -> Row:
    return task(json.dumps({"prompt": "hello", **fields}), status, code)


def query(params: str, status: int = 422, code: str | None = "validation_error") -> Row:
    return Row("GET", f"/query?{params}", status, code, content_type=None)


def cursor(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def nested(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


def row(name: str, case: Row, *marks: pytest.MarkDecorator) -> Any:
    return pytest.param(case, id=name, marks=marks)


MALFORMED_JSON = [
    row("truncated object", task('{"prompt"', 400, "invalid_json")),
    row("trailing comma", task('{"prompt": "x",}', 400, "invalid_json")),
    row("single quotes", task("{'prompt': 'x'}", 400, "invalid_json")),
    row("two documents", task('{"prompt": "x"} {"prompt": "y"}', 400, "invalid_json")),
    row("bare word", task("hello", 400, "invalid_json")),
    row("unquoted key", task('{prompt: "x"}', 400, "invalid_json")),
    row("raw NUL between tokens", task(b'{"prompt":\x00 "x"}', 400, "invalid_json")),
    row("raw NUL inside a string", task(b'{"prompt": "a\x00b"}', 400, "invalid_json")),
    row("raw newline inside a string", task(b'{"prompt": "a\nb"}', 400, "invalid_json")),
    row("invalid UTF-8", task(b'{"prompt": "\xff\xfe"}', 400, "invalid_json")),
    row("overlong UTF-8", task(b'{"prompt": "\xc0\xaf"}', 400, "invalid_json")),
    row("truncated UTF-8", task(b'{"prompt": "\xe2\x82"}', 400, "invalid_json")),
    row("empty body", task(b"")),
]

NON_OBJECT_JSON = [
    row(f"top-level {text}", task(text))
    for text in ("null", "true", "42", "-1", "1e309", '"hello"', "[]", '[{"prompt": "x"}]', "NaN")
]

WRONG_TYPES = [
    row("prompt number", task_json(prompt=42)),
    row("prompt null", task_json(prompt=None)),
    row("prompt list", task_json(prompt=["hello"])),
    row("prompt object", task_json(prompt={"text": "hello"})),
    row("prompt empty", task_json(prompt="")),
    row("prompt blank", task_json(prompt=" \t\n ")),
    row("prompt missing", task('{"system": "be brief"}')),
    row("system number", task_json(system=7)),
    row("provider list", task_json(provider=["echo"])),
    row("model object", task_json(model={"name": "x"})),
    row("strategy number", task_json(strategy=1.5)),
    row("samples word", task_json(samples="five")),
    row("samples fraction", task_json(samples=2.5)),
    row("rounds list", task_json(rounds=[1])),
    row("temperature word", task_json(temperature="hot")),
    row("max_tokens word", task_json(max_tokens="many")),
    row("trace word", task_json(trace="maybe")),
    row("trace list", task_json(trace=[])),
    row("unknown field", task_json(promt="typo")),
    # JSON's types are the documented ones: no coercion.
    row("samples true", task_json(samples=True)),
    row("rounds false", task_json(rounds=False)),
    row("max_calls digits string", task_json(max_calls="3")),
    row("trace yes", task_json(trace="yes")),
    row("trace 1", task_json(trace=1)),
]

HUGE_AND_NEGATIVE = [
    row("samples 10**12", task_json(samples=10**12)),
    row("samples 2**64", task_json(samples=2**64)),
    row("samples -1", task_json(samples=-1)),
    row("samples 0", task_json(samples=0)),
    row("samples 65", task_json(samples=65)),
    row("rounds 2**64", task_json(rounds=2**64)),
    row("rounds -1", task_json(rounds=-1)),
    row("rounds 11", task_json(rounds=11)),
    row("temperature -1", task_json(temperature=-1)),
    row("temperature 10**12", task_json(temperature=10**12)),
    row("max_tokens -1", task_json(max_tokens=-1)),
    row("max_tokens 0", task_json(max_tokens=0)),
    row("max_tokens -2**64", task_json(max_tokens=-(2**64))),
    row("max_calls -1", task_json(max_calls=-1)),
    row("max_calls 0", task_json(max_calls=0)),
    row("max_total_tokens -1", task_json(max_total_tokens=-1)),
    row("max_tokens 1e20 float", task('{"prompt": "x", "max_tokens": 1e20}')),
    row(
        "max_tokens 4400 digits",
        task('{"prompt": "x", "max_tokens": 1' + "0" * 4400 + "}", 400, "invalid_json"),
    ),
    # Beyond the engine's ranges (agent_core.LIMITS), which the request model shares.
    row("max_calls 10**12", task_json(max_calls=10**12)),
    row("max_calls 2**32", task_json(max_calls=2**32)),
    row("max_calls 2**64", task_json(max_calls=2**64)),
    row("max_tokens 2**64", task_json(max_tokens=2**64)),
    row("max_tokens 10**30", task_json(max_tokens=10**30)),
    row("max_total_tokens 2**64", task_json(max_total_tokens=2**64)),
    row("max_total_tokens 10**40", task_json(max_total_tokens=10**40)),
    row(
        "max_tokens 3000 digits",
        task('{"prompt": "x", "max_tokens": 1' + "0" * 3000 + "}"),
    ),
]

NAN_AND_INFINITIES = [
    row(f"{name} {token}", task(f'{{"prompt": "x", "{name}": {token}}}'))
    for name, token in (
        ("temperature", "NaN"),
        ("temperature", "Infinity"),
        ("temperature", "-Infinity"),
        ("temperature", "1e309"),
        ("temperature", "-1e999"),
        ("samples", "NaN"),
        ("rounds", "Infinity"),
        ("max_tokens", "NaN"),
        ("max_tokens", "1e309"),
        ("max_calls", "-Infinity"),
        ("max_total_tokens", "Infinity"),
        ("max_total_tokens", "1e400"),
    )
]

ESCAPES_IN_STRINGS = [
    # A NUL escaped inside a JSON string is a valid string: the task runs and is recorded.
    row("escaped NUL in prompt", task('{"prompt": "a\\u0000b"}', 200, None)),
    row("escaped NUL in system", task('{"prompt": "x", "system": "\\u0000"}', 200, None)),
    row("escaped NUL in model", task('{"prompt": "x", "model": "m\\u0000"}', 200, None)),
    row(
        "escaped NUL in provider",
        task('{"prompt": "x", "provider": "e\\u0000cho"}', 400, "unknown_provider"),
    ),
    row(
        "escaped NUL in strategy",
        task('{"prompt": "x", "strategy": "d\\u0000"}', 400, "unknown_strategy"),
    ),
    row("lone surrogate escape", task('{"prompt": "\\ud800"}')),
]

SIZE_AND_DEPTH = [
    row(
        "body over MAX_BODY_BYTES",
        task_json(413, "request_too_large", prompt="x" * (MAX_BODY_BYTES + 1)),
    ),
    row("prompt over MAX_PROMPT_CHARS", task_json(prompt="x" * 32_001)),
    row("100,000 nested lists", task(nested(100_000), 400, "invalid_json")),
    row(
        "100,000 nested lists as the prompt",
        task('{"prompt": ' + nested(100_000) + "}", 400, "invalid_json"),
    ),
    row("40,000 nested objects", task('{"a":' * 40_000 + "1" + "}" * 40_000, 400, "invalid_json")),
    row("500 nested lists as the system", task('{"prompt": "x", "system": ' + nested(500) + "}")),
    row("40,000-item list as the prompt", task_json(prompt=["x"] * 40_000)),
]

NOT_SENT_AS_JSON = [
    row(name, Row("POST", "/task", 415, "unsupported_media_type", b'{"prompt": "x"}', kind))
    for name, kind in (
        ("text/plain", "text/plain"),
        ("form-urlencoded", "application/x-www-form-urlencoded"),
        ("multipart without boundary", "multipart/form-data"),
        ("xml", "application/xml"),
        ("no content type", None),
        ("content type with a NUL", b"application/json\x00"),
        ("content type with invalid UTF-8", b"application/json\xff"),
    )
] + [
    row(
        "latin-1 body declared as such",
        Row(
            "POST",
            "/task",
            400,
            "invalid_json",
            '{"prompt": "caf\u00e9"}'.encode("latin-1"),
            "application/json; charset=latin-1",
        ),
    ),
]

ROUTES_AND_METHODS = [
    row("unknown route", Row("GET", "/nope", 404, "not_found", content_type=None)),
    row("plural /tasks", Row("POST", "/tasks", 404, "not_found", b"{}")),
    row("NUL in the path", Row("GET", "/query%00", 404, "not_found", content_type=None)),
    row("invalid UTF-8 in the path", Row("GET", "/%ff%fe", 404, "not_found", content_type=None)),
    row("below a task", Row("GET", "/query/abc/steps", 404, "not_found", content_type=None)),
    row("GET /task", Row("GET", "/task", 405, "method_not_allowed", content_type=None)),
    row("DELETE /task", Row("DELETE", "/task", 405, "method_not_allowed", content_type=None)),
    row("PUT /query", Row("PUT", "/query", 405, "method_not_allowed", b"{}")),
    row("PATCH /providers", Row("PATCH", "/providers", 405, "method_not_allowed", b"{}")),
    row("OPTIONS /task", Row("OPTIONS", "/task", 405, "method_not_allowed", content_type=None)),
    row("TRACE /task", Row("TRACE", "/task", 405, "method_not_allowed", content_type=None)),
    row("made-up method", Row("BREW", "/task", 405, "method_not_allowed", content_type=None)),
    row(
        "schema without a key",
        Row("GET", "/openapi.json", 401, "missing_api_key", content_type=None, key=None),
    ),
]

QUERY_PARAMETERS = [
    row("limit 0", query("limit=0")),
    row("limit -1", query("limit=-1")),
    row("limit word", query("limit=ten")),
    row("limit fraction", query("limit=1.5")),
    row("limit exponent", query("limit=1e3")),
    row("limit NaN", query("limit=NaN")),
    row("limit NUL", query("limit=%00")),
    row("limit 10**30", query(f"limit={10**30}")),
    row("limit 1001", query("limit=1001")),
    row("cursor garbage", query("cursor=not-a-cursor", 400, "invalid_cursor")),
    row("cursor empty", query("cursor=", 400, "invalid_cursor")),
    row("cursor NUL", query("cursor=%00", 400, "invalid_cursor")),
    row("cursor invalid UTF-8", query("cursor=%ff%fe", 400, "invalid_cursor")),
    row("cursor too long", query("cursor=" + "A" * 501)),
    row("cursor of a list", query(f"cursor={cursor([])}", 400, "invalid_cursor")),
    row(
        "cursor with a numeric time",
        query(f"cursor={cursor({'t': 5, 'i': 'x'})}", 400, "invalid_cursor"),
    ),
    row(
        "cursor before year 1 in UTC",
        query(
            f"cursor={cursor({'t': '0001-01-01T00:00:00+05:00', 'i': 'x'})}", 400, "invalid_cursor"
        ),
    ),
    row(
        "cursor after year 9999 in UTC",
        query(
            f"cursor={cursor({'t': '9999-12-31T23:59:59-05:00', 'i': 'x'})}", 400, "invalid_cursor"
        ),
    ),
    row("status unknown", query("status=done")),
    row("status NUL", query("status=%00")),
    row("provider too long", query("provider=" + "p" * 65)),
    row("q too long", query("q=" + "q" * 501)),
    row("since a year number", query("since=2024")),
    row("since a Unix time", query("since=1700000000")),
    row("until a fraction", query("until=0.5")),
    row("since negative", query("since=-1")),
    row("since exponent overflow", query("since=1e309")),
    row("since NaN", query("since=NaN")),
    row("until Infinity", query("until=Infinity")),
    row("since month 13", query("since=2024-13-01")),
    row("since hour 25", query("since=2024-01-01T25:00:00")),
    row("since offset +99:00", query("since=2024-01-01T00:00:00%2B99:00")),
    row("since before year 1 in UTC", query("since=0001-01-01T00:00:00%2B05:00")),
    row("until after year 9999 in UTC", query("until=9999-12-31T23:59:59-05:00")),
    row("since NUL", query("since=%00")),
    row("since invalid UTF-8", query("since=%ff")),
    # Searching for text nobody stored is a fine question with an empty answer.
    row("q NUL finds nothing", query("q=%00", 200, None)),
    row("q invalid UTF-8 finds nothing", query("q=%ff%fe", 200, None)),
    row("provider NUL finds nothing", query("provider=%00", 200, None)),
    row("task id NUL", Row("GET", "/query/%00", 404, "task_not_found", content_type=None)),
    row(
        "task id invalid UTF-8", Row("GET", "/query/%ff", 404, "task_not_found", content_type=None)
    ),
    row(
        "task id too long",
        Row("GET", "/query/" + "f" * 65, 422, "validation_error", content_type=None),
    ),
]

HEADERS = [
    row(
        "key with a NUL",
        Row("GET", "/providers", 401, "invalid_api_key", content_type=None, key=KEY_A + "\x00"),
    ),
    row(
        "key of invalid UTF-8",
        Row("GET", "/providers", 401, "invalid_api_key", content_type=None, key=b"\xff\xfe"),
    ),
    row("key empty", Row("GET", "/providers", 401, "missing_api_key", content_type=None, key="")),
    row(
        "key of 16 KiB",
        Row("GET", "/providers", 401, "invalid_api_key", content_type=None, key="k" * 16_384),
    ),
    # A request id the service cannot use safely is replaced by one of its own.
    row(
        "request id with a NUL",
        Row(
            "GET",
            "/providers",
            200,
            None,
            content_type=None,
            headers={"X-Request-ID": "abc\x00def"},
        ),
    ),
    row(
        "request id of invalid UTF-8",
        Row(
            "GET", "/providers", 200, None, content_type=None, headers={"X-Request-ID": b"\xff\xfe"}
        ),
    ),
    row(
        "request id of 4 KiB",
        Row(
            "GET", "/providers", 200, None, content_type=None, headers={"X-Request-ID": "r" * 4096}
        ),
    ),
    row(
        "content length not a number",
        Row("GET", "/providers", 200, None, content_type=None, headers={"Content-Length": "abc"}),
    ),
    row(
        "content length negative",
        Row("GET", "/providers", 200, None, content_type=None, headers={"Content-Length": "-1"}),
    ),
    row(
        "content length of 10**20",
        Row(
            "GET",
            "/providers",
            413,
            "request_too_large",
            content_type=None,
            headers={"Content-Length": str(10**20)},
        ),
    ),
    # Without a valid key, a bad body is never looked at: 401, and no key's budget is spent.
    row(
        "no key, invalid UTF-8 body",
        Row("POST", "/task", 401, "missing_api_key", b'{"prompt": "\xff"}', key=None),
    ),
    row(
        "no key, deeply nested body",
        Row("POST", "/task", 401, "missing_api_key", nested(100_000).encode(), key=None),
    ),
    row(
        "no key, body not JSON",
        Row("POST", "/task", 401, "missing_api_key", b"prompt=x", "text/plain", key=None),
    ),
    row(
        "no key, oversized number",
        Row(
            "POST", "/task", 401, "missing_api_key", b'{"prompt": 1' + b"0" * 4400 + b"}", key=None
        ),
    ),
]

ROWS = [
    *MALFORMED_JSON,
    *NON_OBJECT_JSON,
    *WRONG_TYPES,
    *HUGE_AND_NEGATIVE,
    *NAN_AND_INFINITIES,
    *ESCAPES_IN_STRINGS,
    *SIZE_AND_DEPTH,
    *NOT_SENT_AS_JSON,
    *ROUTES_AND_METHODS,
    *QUERY_PARAMETERS,
    *HEADERS,
]


def _octets(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def send(client: TestClient, case: Row) -> httpx2.Response:
    """The request as the row says, header values as raw octets (NUL and non-UTF-8 included)."""
    headers = {_octets(name): _octets(value) for name, value in case.headers.items()}
    if case.key is not None:
        headers[b"x-api-key"] = _octets(case.key)
    if case.content_type is not None:
        headers[b"content-type"] = _octets(case.content_type)
    return client.request(case.method, case.path, content=case.body, headers=headers)


SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def assert_answer(response: httpx2.Response, case: Row) -> None:
    assert response.status_code == case.status, response.text[:500]
    assert SAFE_REQUEST_ID.fullmatch(response.headers["x-request-id"])
    if case.code is None:
        return
    error = error_envelope(response.json())
    assert error["code"] == case.code, error
    assert "Traceback" not in error["message"]


def assert_still_serving(client: TestClient) -> None:
    """The same app instance answers a normal task, through the mock upstream."""
    response = client.post("/task", headers={"X-API-Key": KEY_A}, json={"prompt": "still serving?"})
    assert response.status_code == 200, response.text
    assert response.json()["answer"] == "still serving?"
    assert response.json()["provider"] == "openai"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    directory: Path = tmp_path_factory.mktemp("bad-input")
    with (
        hostile_app(directory) as (app, _),
        TestClient(app, raise_server_exceptions=False) as test_client,
    ):
        yield test_client


@pytest.mark.parametrize("case", ROWS)
def test_bad_input_is_refused_with_its_4xx_and_the_service_keeps_serving(
    client: TestClient, case: Row
) -> None:
    response = send(client, case)

    assert_answer(response, case)
    assert_still_serving(client)


def test_the_table_covers_every_kind_of_hostile_input() -> None:
    """Guards the table itself: each family the suite promises is present, and every row but
    the legitimate ones expects a 4xx."""
    families = [
        MALFORMED_JSON,
        NON_OBJECT_JSON,
        WRONG_TYPES,
        HUGE_AND_NEGATIVE,
        NAN_AND_INFINITIES,
        ESCAPES_IN_STRINGS,
        SIZE_AND_DEPTH,
        NOT_SENT_AS_JSON,
        ROUTES_AND_METHODS,
        QUERY_PARAMETERS,
        HEADERS,
    ]
    assert all(len(family) >= 4 for family in families)
    cases = [param.values[0] for param in ROWS]
    assert len(cases) >= 150
    assert all(400 <= case.status < 500 for case in cases if case.code is not None)
    assert all(case.status == 200 for case in cases if case.code is None)


# --- PostgreSQL: text it cannot hold ---------------------------------------------------------
# PostgreSQL refuses U+0000 in text and jsonb; a NUL from a client must not turn into a 503 (nor
# fail the other tasks committed in the same batch).

POSTGRESQL_ROWS = [
    row("escaped NUL in prompt", task('{"prompt": "a\\u0000b"}', 200, None)),
    row("escaped NUL in system", task('{"prompt": "x", "system": "\\u0000"}', 200, None)),
    row("escaped NUL in model", task('{"prompt": "x", "model": "m\\u0000"}', 200, None)),
    row("q NUL", query("q=%00", 200, None)),
    row("provider NUL", query("provider=%00", 200, None)),
    row("model NUL", query("model=a%00b", 200, None)),
    row("strategy NUL", query("strategy=%00", 200, None)),
    row("task id NUL", Row("GET", "/query/a%00b", 404, "task_not_found", content_type=None)),
]


@pytest.fixture(scope="module")
def pg_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    directory: Path = tmp_path_factory.mktemp("bad-input-pg")
    url = create_pg_database()
    try:
        with (
            hostile_app(directory, database_url=url) as (app, _),
            TestClient(app, raise_server_exceptions=False) as test_client,
        ):
            yield test_client
    finally:
        drop_pg_database(url)


@pytest.mark.parametrize("case", POSTGRESQL_ROWS)
def test_text_postgresql_cannot_hold_is_no_server_error(pg_client: TestClient, case: Row) -> None:
    response = send(pg_client, case)

    assert_answer(response, case)
    assert_still_serving(pg_client)


def test_a_nul_prompt_is_recorded_and_found_again_on_postgresql(pg_client: TestClient) -> None:
    created = pg_client.post(
        "/task", headers={"X-API-Key": KEY_A}, json={"prompt": "needle \x00 in the prompt"}
    )
    assert created.status_code == 200, created.text

    found = pg_client.get("/query", headers={"X-API-Key": KEY_A}, params={"q": "needle \x00"})
    record = pg_client.get(f"/query/{created.json()['id']}", headers={"X-API-Key": KEY_A})

    assert found.status_code == 200
    assert [item["id"] for item in found.json()["data"]] == [created.json()["id"]]
    assert record.json()["prompt"] == "needle \ufffd in the prompt"
