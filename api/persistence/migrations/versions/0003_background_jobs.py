"""Background tasks: queued and running rows with a lease, progress, options and callbacks.

A background task is a row of `tasks` from the moment it is accepted (status `queued`); a worker
claims it (`running`, `lease_owner` and `lease_expires_at`), renews the lease while it runs
(with `progress`), and finishes the same row (`succeeded`, `failed`, `cancelled`). Every new
column is nullable or has a constant server default, so the change is metadata-only on
PostgreSQL 11+ and instances on revision 0002's code keep writing during a rolling upgrade.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_owner", sa.String(128), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("progress", json_type, nullable=True))
        batch.add_column(sa.Column("job_options", json_type, nullable=True))
        batch.add_column(sa.Column("callback", json_type, nullable=True))
    # The sweeper's and the per-key cap's lookups: few rows are queued or running at a time.
    op.create_index("ix_tasks_status_lease_expires_at", "tasks", ["status", "lease_expires_at"])
    op.create_index("ix_tasks_key_id_status", "tasks", ["key_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_tasks_key_id_status", table_name="tasks")
    op.drop_index("ix_tasks_status_lease_expires_at", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        for name in (
            "callback",
            "job_options",
            "progress",
            "cancel_requested",
            "finished_at",
            "started_at",
            "enqueued_at",
            "lease_expires_at",
            "lease_owner",
            "attempts",
        ):
            batch.drop_column(name)
