"""Suite-wide guard: a test fails when the service logged an unhandled error it did not expect.

The request middleware (api/middleware.py) answers an exception no handler anticipated with a
500 `internal_error` and logs it through the `api.error` logger. A test that gets the answer it
wanted while the server hit a bug on the way is not a passing test, so every `api.error` record
emitted while a test runs fails that test, unless:

- the test is marked `@pytest.mark.allow_internal_errors` (it provokes a bug on purpose), or
- the test accepted those particular records through the `api_error_log` fixture
  (`api_error_log.accept(request_id)`: one request's records, nothing else).

Records emitted up to the end of the test's call phase fail the call itself (so `xfail`
applies to them like to any failure of the test); records emitted later, in fixture teardown,
fail the teardown. Servers run as subprocesses are scanned the same way by the `serve` fixture
(tests/api/conftest.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from api.logging import REQUEST_ID

ERROR_LOGGER = "api.error"
ALLOW_MARKER = "allow_internal_errors"


class ApiErrorLog(logging.Handler):
    """Collects the `api.error` records of one test."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._accepted: set[str] = set()
        self._reported = 0

    def emit(self, record: logging.LogRecord) -> None:
        # The request id the record belongs to (our handler runs before the root handler's
        # filter would stamp it).
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        self.records.append(record)

    def accept(self, request_id: str) -> list[logging.LogRecord]:
        """Accepts the records of the request `request_id` (its X-Request-ID); returns them."""
        self._accepted.add(request_id)
        return [r for r in self.records if getattr(r, "request_id", None) == request_id]

    def unexpected(self) -> list[logging.LogRecord]:
        """Records not yet reported and not accepted."""
        fresh = self.records[self._reported :]
        self._reported = len(self.records)
        return [r for r in fresh if getattr(r, "request_id", None) not in self._accepted]


def _describe(records: list[logging.LogRecord]) -> str:
    lines = []
    for record in records:
        cause = ""
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            cause = f": {type(error).__name__}: {error}"
        lines.append(f"  [{getattr(record, 'request_id', None)}] {record.getMessage()}{cause}")
    return "\n".join(lines)


_LOG_KEY = pytest.StashKey[ApiErrorLog]()


def _check(item: pytest.Item, when: str) -> None:
    log = item.stash.get(_LOG_KEY, None)
    if log is None or item.get_closest_marker(ALLOW_MARKER) is not None:
        return
    unexpected = log.unexpected()
    if unexpected:
        pytest.fail(
            f"the service logged {len(unexpected)} unhandled error(s) ({ERROR_LOGGER}) during "
            f"{when}; fix the bug, or mark the test @pytest.mark.{ALLOW_MARKER} if it provokes "
            f"one on purpose:\n{_describe(unexpected)}",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def api_error_log(request: pytest.FixtureRequest) -> Iterator[ApiErrorLog]:
    """The `api.error` records of this test (installed for every test)."""
    log = ApiErrorLog()
    logger = logging.getLogger(ERROR_LOGGER)
    logger.addHandler(log)
    request.node.stash[_LOG_KEY] = log
    try:
        yield log
    finally:
        logger.removeHandler(log)
    _check(request.node, "teardown")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        result = yield
    except BaseException:
        # The test's own failure wins and is reported as it is (its log shows the records):
        # they are not reported a second time at teardown.
        log = item.stash.get(_LOG_KEY, None)
        if log is not None:
            log.unexpected()
        raise
    _check(item, "the test")
    return result
