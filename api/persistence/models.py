"""The `tasks` table: one row per task (`POST /task`, `/v1`, background jobs, ...).

The table is declared with SQLAlchemy Core (not ORM classes): the store inserts plain dicts in
batches and maps rows to the frozen `TaskRecord` itself, so an ORM identity map would only add
cost. Migrations (`migrations/versions/`) create exactly this schema; `test_persistence_migrations`
checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# Stable constraint/index names, so migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every backend.

    PostgreSQL stores `timestamptz`. SQLite has no timezone type: SQLAlchemy stores a fixed-width
    ISO string, which sorts correctly only if every value is in the same zone, so we store UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (compact, indexable later); JSON text elsewhere.
JSONType: Any = JSON().with_variant(JSONB(), "postgresql")

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("system", Text),
    Column("provider", String(64)),
    Column("model", String(200)),
    Column("strategy", String(64), nullable=False),
    Column("params", JSONType, nullable=False),
    Column("answer", Text),
    Column("confidence", Float),
    Column("votes", JSONType),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("calls", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("trace", JSONType),
    Column("budget_exhausted", Boolean, nullable=False),
    # Which face the task came through: task, v1, cli, job (migration 0002; older rows: task).
    Column("source", String(16), nullable=False, server_default="task"),
    # Background tasks (migration 0003): the claim's lease, progress, options, the callback.
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UTCDateTime()),
    Column("enqueued_at", UTCDateTime()),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Column("progress", JSONType),
    Column("job_options", JSONType),
    Column("callback", JSONType),
    # A vote's sampling, and every provider that answered a call (migration 0004).
    Column("sampling", JSONType),
    Column("providers_used", String(1024)),
)

# Per-key listing, newest first: WHERE key_id = ? [AND (created_at, id) < cursor]
# ORDER BY created_at DESC, id DESC LIMIT n walks this index in order and stops after n rows.
Index("ix_tasks_key_id_created_at_id", tasks.c.key_id, tasks.c.created_at, tasks.c.id)
# Admin listing across keys, same ordering.
Index("ix_tasks_created_at_id", tasks.c.created_at, tasks.c.id)
# The sweeper (queued tasks, running tasks whose lease expired) and the per-key active cap.
Index("ix_tasks_status_lease_expires_at", tasks.c.status, tasks.c.lease_expires_at)
Index("ix_tasks_key_id_status", tasks.c.key_id, tasks.c.status)
