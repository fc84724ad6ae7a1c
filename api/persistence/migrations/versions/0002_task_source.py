"""Record the face each task came through: tasks.source (task, v1, cli, job).

Existing rows get "task": before this revision `POST /task` was the only recorded entry point.
The server default also keeps an instance still on revision 0001's code writing (it inserts no
`source`) during a rolling upgrade.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN ... NOT NULL DEFAULT 'task': a constant default is a metadata-only change on
    # PostgreSQL 11+ (no table rewrite) and is allowed by SQLite's ALTER TABLE as it is.
    op.add_column(
        "tasks",
        sa.Column("source", sa.String(16), nullable=False, server_default="task"),
    )


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot DROP COLUMN, so the table is rebuilt there.
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("source")
