"""Recordings and their track files (recordings/tables.py).

Revision ID: r0006
Revises: r0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0006"
down_revision: str | None = "r0005"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(64)
TEXT = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("recording_id", ID, nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("room_name", TEXT, nullable=False),
        sa.Column("external_id", TEXT, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("started_by", ID, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("tracks", sa.JSON, nullable=False),
        sa.Column("composed", TEXT, nullable=True),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("error", sa.String(64), nullable=True),
        sa.Column("error_message", sa.String(1000), nullable=True),
        sa.Column("chat", sa.Boolean, nullable=False),
        sa.Column("captions", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("recording_id", name="pk_recordings"),
    )
    op.create_index("ix_recordings_room_id_started_at", "recordings", ["room_id", "started_at"])
    op.create_index("ix_recordings_external_id", "recordings", ["external_id"])
    op.create_index("ix_recordings_started_at", "recordings", ["started_at"])
    op.create_index("ix_recordings_state", "recordings", ["state"])


def downgrade() -> None:
    op.drop_index("ix_recordings_state", table_name="recordings")
    op.drop_index("ix_recordings_started_at", table_name="recordings")
    op.drop_index("ix_recordings_external_id", table_name="recordings")
    op.drop_index("ix_recordings_room_id_started_at", table_name="recordings")
    op.drop_table("recordings")
