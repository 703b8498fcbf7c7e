"""BigBlueButton meetings: the ids, passwords and metadata a BigBlueButton client created a room with.

Revision ID: r0005
Revises: r0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0005"
down_revision: str | None = "r0004"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(64)
TEXT = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "bbb_meetings",
        sa.Column("internal_id", ID, nullable=False),
        sa.Column("meeting_id", sa.String(256), nullable=False),
        sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                               name="fk_bbb_meetings_room_id_rooms"), nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("attendee_pw", sa.String(64), nullable=False),
        sa.Column("moderator_pw", sa.String(64), nullable=False),
        sa.Column("create_time_ms", sa.BigInteger, nullable=False),
        sa.Column("duration_minutes", sa.Integer, nullable=False),
        sa.Column("max_participants", sa.Integer, nullable=False),
        sa.Column("guest_policy", sa.String(32), nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("internal_id", name="pk_bbb_meetings"),
    )
    op.create_index("ix_bbb_meetings_meeting_id_create_time_ms", "bbb_meetings", ["meeting_id", "create_time_ms"])
    op.create_index("ix_bbb_meetings_ended_at", "bbb_meetings", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_bbb_meetings_ended_at", table_name="bbb_meetings")
    op.drop_index("ix_bbb_meetings_meeting_id_create_time_ms", table_name="bbb_meetings")
    op.drop_table("bbb_meetings")
