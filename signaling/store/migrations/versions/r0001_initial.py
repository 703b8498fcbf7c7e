"""The first schema: rooms, exclusions (bans, denials), role overrides, participants, attendance
and its intervals, chat messages with tombstones.

Revision ID: r0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(64)
TEXT = sa.String(200)
ACTIVE = "ended_at IS NULL AND external_id IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("room_id", ID, nullable=False),
        sa.Column("external_id", TEXT, nullable=True),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("lock_before_lockdown", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("room_id", name="pk_rooms"),
    )
    op.create_index("uq_rooms_active_external_id", "rooms", ["external_id"], unique=True,
                    sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
    op.create_index("ix_rooms_created_at", "rooms", ["created_at"])
    op.create_table(
        "room_exclusions",
        sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                               name="fk_room_exclusions_room_id_rooms"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("identity", TEXT, nullable=False),
        sa.PrimaryKeyConstraint("room_id", "kind", "identity", name="pk_room_exclusions"),
    )
    op.create_table(
        "role_overrides",
        sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                               name="fk_role_overrides_room_id_rooms"), nullable=False),
        sa.Column("identity", TEXT, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "identity", name="pk_role_overrides"),
    )
    op.create_table(
        "participants",
        sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                               name="fk_participants_room_id_rooms"), nullable=False),
        sa.Column("participant_id", ID, nullable=False),
        sa.Column("identity", TEXT, nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("family_name", TEXT, nullable=False),
        sa.Column("given_name", TEXT, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("registered", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("joined_at", sa.Float, nullable=True),
        sa.Column("waiting_since", sa.Float, nullable=True),
        sa.Column("left_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("room_id", "participant_id", name="pk_participants"),
    )
    op.create_index("ix_participants_room_id_family_name", "participants", ["room_id", "family_name"])
    op.create_table(
        "attendance",
        sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                               name="fk_attendance_room_id_rooms"), nullable=False),
        sa.Column("identity", TEXT, nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("family_name", TEXT, nullable=False),
        sa.Column("given_name", TEXT, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("registered", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("room_id", "identity", name="pk_attendance"),
    )
    op.create_table(
        "attendance_intervals",
        sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                               name="fk_attendance_intervals_room_id_rooms"), nullable=False),
        sa.Column("identity", TEXT, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("joined_at", sa.Float, nullable=False),
        sa.Column("left_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("room_id", "identity", "seq", name="pk_attendance_intervals"),
    )
    op.create_table(
        "chat_messages",
        sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                               name="fk_chat_messages_room_id_rooms"), nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("from_id", ID, nullable=False),
        sa.Column("from_name", TEXT, nullable=False),
        sa.Column("to_id", ID, nullable=True),
        sa.Column("to_name", TEXT, nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sent_at", sa.Float, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("room_id", "message_id", name="pk_chat_messages"),
    )
    op.create_index("ix_chat_messages_room_id_seq", "chat_messages", ["room_id", "seq"])


def downgrade() -> None:
    for table in ("chat_messages", "attendance_intervals", "attendance", "participants", "role_overrides",
                  "room_exclusions", "rooms"):
        op.drop_table(table)
