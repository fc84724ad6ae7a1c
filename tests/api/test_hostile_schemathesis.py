"""Schemathesis against the real app's OpenAPI document, in process (ASGI), with a fixed seed.

Every operation of the document goes through every phase: `examples`, `coverage` and
`fuzzing` (one pytest subtest per operation), then `stateful` (a state machine over the links
the document implies: a task's `id` from `POST /task` feeds `GET /query/{task_id}`). Each
response must pass every check: no server error (a 5xx of any kind: the upstream is a mock
that always answers, so a 502 here is a bug of ours), status codes, content types, bodies and
headers as documented, schema-valid requests accepted (2xx, or a documented refusal the schema
cannot express, e.g. `invalid_cursor`), schema-violating ones refused, the key enforced.

The case counts per phase are printed in pytest's terminal summary; the suite requires at
least MIN_CASES in total, so a change that silently stops generation turns it red.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case as GenericCase
from schemathesis.python import asgi
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.api.conftest import KEY_A
from tests.api.hostile_support import error_envelope, hostile_app
from tests.conftest import ApiErrorLog
from tests.mock_upstreams import OpenAIMock

SEED = 20_241_130
CLIENT_HEADERS = {"X-API-Key": KEY_A, "Authorization": f"Bearer {KEY_A}"}
FUZZING_EXAMPLES = 200  # per operation (those without parameters have far fewer distinct cases)
STATEFUL_SCENARIOS = 40
STATEFUL_MAX_STEPS = 8
MIN_CASES = 1_000

# Business refusals of schema-valid requests, each documented with its code (docs/api.md): an
# unknown provider or strategy, options the engine refuses together (e.g. self_consistency at
# temperature 0), a cursor not issued by /query (400); a prompt over MAX_PROMPT_CHARS or a
# budget that runs out before any answer (422); no such task (404); a cancel of a task that has
# ended (409 not_cancellable).
SCHEMA_VALID_REFUSALS = ["2xx", "400", "401", "404", "409", "422", "429"]

CHECKS: dict[str, dict[str, Any]] = {
    "not_a_server_error": {"enabled": True},
    "status_code_conformance": {"enabled": True},
    "content_type_conformance": {"enabled": True},
    "response_schema_conformance": {"enabled": True},
    "response_headers_conformance": {"enabled": True},
    "negative_data_rejection": {"enabled": True},
    "positive_data_acceptance": {"enabled": True, "expected-statuses": SCHEMA_VALID_REFUSALS},
    "missing_required_header": {"enabled": True},
    "ignored_auth": {"enabled": True},
    "unsupported_method": {"enabled": True},
    "use_after_free": {"enabled": True},
    "ensure_resource_availability": {"enabled": True},
}


@dataclass
class Stats:
    """What the run did: cases per phase and statuses."""

    cases: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    linked_reads: int = 0  # stateful GET /query/{task_id} of a task the scenario created
    failed_checks: int = 0  # responses that failed a check (each also fails its test)
    own_deadlines: int = 0  # 504 deadline_exceeded for a task's own deadline_ms (documented)

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        phases = ", ".join(f"{name} {count}" for name, count in sorted(self.cases.items()))
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"schemathesis: {self.total} cases ({phases}); seed {SEED}; "
            f"{self.failed_checks} failed checks; "
            f"{self.server_errors - self.own_deadlines} server errors "
            f"(+{self.own_deadlines} 504 for a task's own deadline_ms); "
            f"{self.linked_reads} linked reads of created tasks; statuses {statuses}"
        )


STATS = Stats()


class _SummaryPlugin:
    """Prints the case counts at the end of pytest's output (so CI logs show them)."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if STATS.total:
            terminalreporter.write_line(STATS.summary())


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request: pytest.FixtureRequest) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("hostile-schemathesis-summary"):
        manager.register(_SummaryPlugin(), "hostile-schemathesis-summary")


@dataclass
class Service:
    app: FastAPI
    upstream: OpenAIMock
    schema: OpenApiSchema


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The app, started by schemathesis' own ASGI runner (lifespan included), and its schema
    as the app serves it at /openapi.json (with the key, like any client)."""
    directory: Path = tmp_path_factory.mktemp("schemathesis")
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            # The key both ways the document declares (either admits a request): the auth
            # probes then take each scheme away, or spoil it, in turn.
            "headers": CLIENT_HEADERS,
            "generation": {"database": "none", "max-examples": FUZZING_EXAMPLES},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": STATEFUL_MAX_STEPS},
            },
            "checks": CHECKS,
        }
    )
    with hostile_app(directory) as (app, upstream):
        schema = schemathesis.openapi.from_asgi(
            "/openapi.json", app, config=config, headers=CLIENT_HEADERS
        )
        try:
            yield Service(app, upstream, schema)
        finally:
            asgi.shutdown_lifespans()  # the store flushes and closes before the mock stops


@pytest.fixture(scope="module")
def api_schema(service: Service) -> OpenApiSchema:
    return service.schema


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy loader renames the running test through `Node._nodeid`, which
    pytest 9.2 no longer has (it keeps the id as `Node._id`); giving it the attribute is
    enough, pytest's own reporting is unaffected."""
    request.node._nodeid = request.node.nodeid


Case = GenericCase[Any]


def _request_id(response: Response) -> str | None:
    values = response.headers.get("x-request-id")
    return values[0] if values else None


def _count(case: Case, response: Response) -> None:
    STATS.cases[str(case.meta.phase.name) if case.meta is not None else "unknown"] += 1
    STATS.statuses[response.status_code] += 1


@contextlib.contextmanager
def _counting_failures() -> Iterator[None]:
    try:
        yield
    except BaseException:  # schemathesis' FailureGroup is a BaseExceptionGroup
        STATS.failed_checks += 1
        raise


def _own_deadline(case: Case, response: Response) -> bool:
    """A task whose own `deadline_ms` passed before any answer: 504 `deadline_exceeded` is the
    documented answer (a gateway timeout of the client's choosing, not a fault of ours); its
    body must still be the error envelope."""
    body = case.body if isinstance(case.body, dict) else {}
    extension = body.get("reasoning_agent")  # /v1/chat/completions carries it there
    options = extension if isinstance(extension, dict) else body
    if response.status_code != 504 or options.get("deadline_ms") is None:
        return False
    if error_envelope(response.json())["code"] != "deadline_exceeded":
        return False
    STATS.own_deadlines += 1
    return True


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_examples_coverage_fuzzing(case: Case, api_error_log: ApiErrorLog) -> None:
    response = case.call()
    _count(case, response)
    if _own_deadline(case, response):
        return
    with _counting_failures():
        case.validate_response(response)


def test_stateful_scenarios_follow_the_links(service: Service, api_error_log: ApiErrorLog) -> None:
    machine = service.schema.as_state_machine()
    transitions = service.schema.statistic.transitions
    assert transitions.selected >= 1, "no link between operations: the stateful phase is vacuous"

    class Scenario(machine):  # type: ignore[misc, valid-type]
        def validate_response(
            self,
            response: Response,
            case: Case,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            _count(case, response)
            reads = ("GET /query/{task_id}", "GET /task/{task_id}", "GET /task/{task_id}/events")
            if case.operation.label in reads and response.status_code == 200:
                STATS.linked_reads += 1
            if _own_deadline(case, response):
                return
            with _counting_failures():
                super().validate_response(response, case, additional_checks, **kwargs)

    Scenario.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_MAX_STEPS,
            derandomize=True,  # a fixed seed: the same scenarios on every run
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    assert STATS.linked_reads > 0, "no scenario read back a task it created"


def test_the_run_was_large_and_saw_every_phase() -> None:
    if not STATS.cases["stateful"]:
        pytest.skip("the schemathesis tests above did not run (deselected)")
    assert STATS.total >= MIN_CASES, STATS.summary()
    assert {"examples", "coverage", "fuzzing", "stateful"} <= set(STATS.cases), STATS.summary()
    assert STATS.server_errors == STATS.own_deadlines, STATS.summary()
    assert STATS.failed_checks == 0, STATS.summary()
