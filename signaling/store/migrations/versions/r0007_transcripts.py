"""Transcripts and caption lines (transcription/tables.py).

Revision ID: r0007
Revises: r0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0007"
down_revision: str | None = "r0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "transcript_lines",
        sa.Column("line_id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("room_id", sa.String(64), sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                                          name="fk_transcript_lines_room_id_rooms"), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("start_at", sa.Float, nullable=False),
        sa.Column("end_at", sa.Float, nullable=False),
        sa.Column("text", sa.String(4000), nullable=False),
        sa.PrimaryKeyConstraint("line_id", name="pk_transcript_lines"),
    )
    op.create_index("ix_transcript_lines_room_id_start_at", "transcript_lines", ["room_id", "start_at"])
    op.create_index("ix_transcript_lines_end_at", "transcript_lines", ["end_at"])


def downgrade() -> None:
    op.drop_index("ix_transcript_lines_end_at", table_name="transcript_lines")
    op.drop_index("ix_transcript_lines_room_id_start_at", table_name="transcript_lines")
    op.drop_table("transcript_lines")
