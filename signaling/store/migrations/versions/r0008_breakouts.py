"""Breakout groups, templates and who was in which group (signaling/store/breakout_tables.py).

Revision ID: r0008
Revises: r0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0008"
down_revision: str | None = "r0007"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(64)
TEXT = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "breakout_templates",
        sa.Column("template_id", ID, nullable=False),
        sa.Column("class_id", TEXT, nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("groups", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("template_id", name="pk_breakout_templates"),
        sa.UniqueConstraint("class_id", "name", name="uq_breakout_templates_class_id_name"),
    )
    op.create_table(
        "breakout_stints",
        sa.Column("room_id", ID, nullable=False),
        sa.Column("session_id", ID, nullable=False),
        sa.Column("breakout_id", ID, nullable=False),
        sa.Column("breakout_name", TEXT, nullable=False),
        sa.Column("participant_id", ID, nullable=False),
        sa.Column("identity", TEXT, nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("joined_at", sa.Float, nullable=False),
        sa.Column("left_at", sa.Float, nullable=True),
        sa.Column("visitor", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("room_id", "session_id", "participant_id", "joined_at", name="pk_breakout_stints"),
    )
    op.create_index("ix_breakout_stints_room_id_joined_at", "breakout_stints", ["room_id", "joined_at"])


def downgrade() -> None:
    op.drop_index("ix_breakout_stints_room_id_joined_at", table_name="breakout_stints")
    op.drop_table("breakout_stints")
    op.drop_table("breakout_templates")
