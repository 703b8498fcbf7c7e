"""A recording's breakout group (recordings/tables.py): record_groups makes one recording per group.

Revision ID: r0010
Revises: r0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0010"
down_revision: str | None = "r0009"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(64)
TEXT = sa.String(200)


def upgrade() -> None:
    op.add_column("recordings", sa.Column("group_id", ID, nullable=True))
    op.add_column("recordings", sa.Column("group_name", TEXT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("group_name")
        batch.drop_column("group_id")
