"""The lesson's record beyond chat and attendance: raised hands and attention checks with their answers;
a lesson's roster on its room.

Revision ID: r0004
Revises: r0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0004"
down_revision: str | None = "r0003"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(64)
TEXT = sa.String(200)


def upgrade() -> None:
    # a nullable column with no default: SQLite adds it in place (no table rebuild)
    op.add_column("rooms", sa.Column("roster", sa.JSON, nullable=True))
    op.create_table(
        "hands",
        sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                               name="fk_hands_room_id_rooms"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("participant_id", ID, nullable=False),
        sa.Column("raised_at", sa.Float, nullable=False),
        sa.Column("lowered_at", sa.Float, nullable=True),
        sa.Column("lowered_by", ID, nullable=True),
        sa.Column("reason", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("room_id", "seq", name="pk_hands"),
    )
    op.create_table(
        "attention_requests",
        sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                               name="fk_attention_requests_room_id_rooms"), nullable=False),
        sa.Column("attention_id", ID, nullable=False),
        sa.Column("from_id", ID, nullable=False),
        sa.Column("from_name", TEXT, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sent_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("room_id", "attention_id", name="pk_attention_requests"),
    )
    op.create_index("ix_attention_requests_room_id_sent_at", "attention_requests", ["room_id", "sent_at"])
    op.create_table(
        "attention_targets",
        sa.Column("room_id", ID, nullable=False),
        sa.Column("attention_id", ID, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("participant_id", ID, nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("acked_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("room_id", "attention_id", "participant_id", name="pk_attention_targets"),
        sa.ForeignKeyConstraint(["room_id", "attention_id"],
                                ["attention_requests.room_id", "attention_requests.attention_id"],
                                ondelete="CASCADE", name="fk_attention_targets_room_id_attention_requests"),
    )


def downgrade() -> None:
    for table in ("attention_targets", "attention_requests", "hands"):
        op.drop_table(table)
    # ALTER TABLE ... DROP COLUMN on both databases (SQLite 3.35+): no table rebuild, so no
    # DROP TABLE rooms that would cascade to every room's rows
    op.drop_column("rooms", "roster")
