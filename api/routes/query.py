"""`GET /query` and `GET /query/{id}`: the task history.

A key sees only the tasks it made; an admin key (ADMIN_API_KEYS) sees every key's. Another
key's task is a 404, exactly like a task that does not exist: a 403 would confirm that the id
exists.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, BeforeValidator

from api.config import QUERY_LIMIT_MAX
from api.deps import Admitted, SettingsDep, StoreDep
from api.errors import APIError, ErrorBody
from api.persistence import StoreError
from api.persistence.records import QueryFilters, TaskSource
from api.routes.schemas import QueryPage, TaskRecordOut
from providers.task_options import Bounds, Within

__all__ = ["router"]

router = APIRouter(tags=["history"])


class HistoryUnavailable(APIError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "the task history is unreachable; retry shortly",
            type="service_unavailable",
            code="storage_unavailable",
            headers={"Retry-After": "1"},
        )


# A bare number: pydantic would read it as a Unix time (`since=2024` as 33 minutes past the
# epoch), which no caller of an API documented as ISO 8601 means.
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _iso_8601(value: object) -> object:
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be an ISO 8601 time, e.g. 2024-05-01T12:00:00Z (not a number)")
    return value


def _in_utc(moment: datetime | None) -> datetime | None:
    """The time in UTC; one without a zone is taken as UTC. A time that leaves the calendar once
    converted (0001-01-01T00:00+05:00) is refused like any invalid time, not a 500."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


# ISO 8601, normalised to UTC at the boundary: the store only ever sees valid UTC times.
QueryTime = Annotated[datetime | None, BeforeValidator(_iso_8601), AfterValidator(_in_utc)]


@router.get(
    "/query",
    response_model=QueryPage,
    summary="Query previous answers, newest first",
    responses={
        400: {"model": ErrorBody, "description": "Malformed cursor (code invalid_cursor)"},
        503: {"model": ErrorBody, "description": "History unreachable (storage_unavailable)"},
    },
)
async def query_tasks(
    principal: Admitted,
    settings: SettingsDep,
    store: StoreDep,
    q: Annotated[
        str | None,
        Query(max_length=500, description="Text searched in prompts and answers (any case)"),
    ] = None,
    provider: Annotated[
        str | None,
        Query(
            max_length=64,
            description="The provider that served it, or any that answered one of its calls",
        ),
    ] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    strategy: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
    source: Annotated[
        TaskSource | None,
        Query(description="The face a task came through: task (POST /task), v1, cli, job"),
    ] = None,
    since: Annotated[
        QueryTime, Query(description="Created at or after (ISO 8601; no zone: UTC)")
    ] = None,
    until: Annotated[
        QueryTime, Query(description="Created before (ISO 8601; no zone: UTC)")
    ] = None,
    limit: Annotated[
        int,
        Within(Bounds(1, QUERY_LIMIT_MAX)),
        Query(description="Page size; above QUERY_MAX_LIMIT (default 100) it is capped"),
    ] = 20,
    cursor: Annotated[
        str | None, Query(max_length=500, description="`next_cursor` of the previous page")
    ] = None,
) -> QueryPage:
    filters = QueryFilters(
        q=q or None,
        provider=provider,
        model=model,
        strategy=strategy,
        status=status,
        source=source,
        since=since,
        until=until,
    )
    try:
        page = await store.query(
            filters,
            key_id=None if principal.is_admin else principal.key_id,
            limit=min(limit, settings.query_max_limit),
            cursor=cursor,
        )
    except ValueError:
        raise APIError(
            400,
            "cursor is not valid: pass the next_cursor of a previous page unchanged",
            type="invalid_request_error",
            code="invalid_cursor",
        ) from None
    except StoreError:
        raise HistoryUnavailable() from None
    return QueryPage(
        data=[TaskRecordOut.from_record(item, with_trace=False) for item in page.items],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/query/{task_id}",
    response_model=TaskRecordOut,
    summary="One previous task, with its trace",
    responses={
        404: {"model": ErrorBody, "description": "No such task for this key (task_not_found)"},
        503: {"model": ErrorBody, "description": "History unreachable (storage_unavailable)"},
    },
)
async def get_task(
    principal: Admitted,
    store: StoreDep,
    task_id: Annotated[str, Path(max_length=64, description="The task's id")],
) -> TaskRecordOut:
    try:
        record = await store.get(task_id, key_id=None if principal.is_admin else principal.key_id)
    except StoreError:
        raise HistoryUnavailable() from None
    if record is None:
        raise APIError(
            404,
            f"no task {task_id!r} for this API key",
            type="not_found_error",
            code="task_not_found",
        )
    return TaskRecordOut.from_record(record, with_trace=True)
