"""What a vote drew and who took part: tasks.sampling and tasks.providers_used.

`sampling` is a voting task's `Answer.sampling` (samples drawn, waves, why sampling stopped,
the probability that the winner stands). `providers_used` lists every provider that answered a
call of the task, as `,openai,anthropic,` (commas around each name), so `GET /query?provider=`
finds a vote across providers by any of its members with one portable LIKE. Both nullable: a
metadata-only change, and instances on 0003's code keep writing during a rolling upgrade.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("sampling", json_type, nullable=True))
        batch.add_column(sa.Column("providers_used", sa.String(1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("providers_used")
        batch.drop_column("sampling")
