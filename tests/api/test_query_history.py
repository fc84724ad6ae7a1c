"""GET /query and /query/{id}: filters, keyset pagination, isolation between keys, restarts."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN_KEY, KEY_A, KEY_B, MakeApp, headers, run_task


def _ids(client: TestClient, query: str = "", key: str = KEY_A) -> list[str]:
    response = client.get(f"/query{query}", headers=headers(key))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def test_query_lists_newest_first(client: TestClient) -> None:
    made = [run_task(client, prompt=f"p{i}").json()["id"] for i in range(3)]

    assert _ids(client) == made[::-1]


def test_query_items_carry_no_trace_but_one_record_does(client: TestClient) -> None:
    task = run_task(client).json()

    listed = client.get("/query", headers=headers()).json()["data"][0]
    single = client.get(f"/query/{task['id']}", headers=headers()).json()

    assert listed["steps"] is None
    assert single["steps"][0]["purpose"] == "answer"


def test_a_records_trace_says_when_each_call_started(client: TestClient) -> None:
    task = run_task(client, prompt="Final answer: 3", strategy="refine", rounds=1).json()

    steps = client.get(f"/query/{task['id']}", headers=headers()).json()["steps"]

    assert [step["purpose"] for step in steps] == ["draft", "critique 1", "revise 1"]
    starts = [step["started_ms"] for step in steps]
    assert all(isinstance(start, float) and start >= 0 for start in starts), starts
    for before, after in itertools.pairwise(steps):
        assert after["started_ms"] >= before["started_ms"] + before["latency_ms"] - 0.01


def test_filters_by_provider_strategy_and_status(client: TestClient) -> None:
    direct = run_task(client).json()["id"]
    voted = run_task(client, prompt="2+2?", strategy="self_consistency", samples=2).json()["id"]
    run_task(client, provider="openai")  # fails: not configured

    assert _ids(client, "?strategy=self_consistency") == [voted]
    assert _ids(client, "?provider=echo") == [voted, direct]
    assert len(_ids(client, "?status=failed")) == 1
    assert _ids(client, "?status=succeeded&strategy=direct") == [direct]


def test_q_searches_prompt_and_answer_text_in_any_case(client: TestClient) -> None:
    marker = uuid.uuid4().hex[:8]
    wanted = run_task(client, prompt=f"About the Zebra {marker}").json()["id"]
    run_task(client, prompt="something else")

    assert _ids(client, f"?q=zebra%20{marker}") == [wanted]


def test_since_and_until_bound_the_creation_time(client: TestClient) -> None:
    early = run_task(client).json()
    time.sleep(0.01)
    late = run_task(client).json()
    cut = late["created_at"]

    assert _ids(client, f"?since={cut}") == [late["id"]]
    assert _ids(client, f"?until={cut}") == [early["id"]]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert _ids(client, f"?since={future}") == []


def test_cursor_pagination_walks_every_record_once(client: TestClient) -> None:
    made = [run_task(client, prompt=f"p{i}").json()["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/query{query}", headers=headers()).json()
        seen += [item["id"] for item in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == made[::-1]


def test_limit_is_capped_at_query_max_limit(make_app: MakeApp) -> None:
    with make_app(query_max_limit=2) as client:
        for _ in range(3):
            run_task(client)
        page = client.get("/query?limit=50", headers=headers()).json()

    assert len(page["data"]) == 2
    assert page["next_cursor"] is not None


def test_a_key_cannot_list_another_keys_tasks(client: TestClient) -> None:
    run_task(client, key=KEY_B, prompt="B's private question")
    mine = run_task(client, key=KEY_A).json()["id"]

    assert _ids(client, key=KEY_A) == [mine]
    assert _ids(client, "?q=private", key=KEY_A) == []


def test_a_key_gets_404_for_another_keys_task(client: TestClient) -> None:
    theirs = run_task(client, key=KEY_B).json()["id"]

    response = client.get(f"/query/{theirs}", headers=headers(KEY_A))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "task_not_found"


def test_an_admin_key_sees_every_keys_tasks(client: TestClient) -> None:
    a = run_task(client, key=KEY_A).json()["id"]
    b = run_task(client, key=KEY_B).json()["id"]

    assert _ids(client, key=ADMIN_KEY) == [b, a]
    assert client.get(f"/query/{a}", headers=headers(ADMIN_KEY)).status_code == 200


def test_history_survives_a_restart(make_app: MakeApp) -> None:
    with make_app() as client:
        made = run_task(client).json()["id"]
    with make_app() as restarted:
        record = restarted.get(f"/query/{made}", headers=headers())

    assert record.status_code == 200
    assert record.json()["answer"] == "Hello, world!"


def test_postgresql_history_through_the_api(make_app: MakeApp, fresh_pg_database_url: str) -> None:
    marker = uuid.uuid4().hex
    with make_app(database_url=fresh_pg_database_url) as client:
        made = run_task(client, prompt=f"postgres {marker}").json()["id"]
        listed = _ids(client, f"?q={marker}")
        record = client.get(f"/query/{made}", headers=headers()).json()

    assert listed == [made]
    assert record["prompt"] == f"postgres {marker}"
