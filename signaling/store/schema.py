"""The durable store's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

What is here is what a restart must keep (docs/architecture.md, "The durable store"): rooms with
their settings, bans and denials, role changes, participants (their seats), attendance intervals
and the chat with its tombstones.  Live state (connections, media, the hand queue, attention
requests, rate limits, unmute grants) is not stored.  Every table but ``rooms`` hangs off a room
and goes with it (ON DELETE CASCADE: the retention job deletes rooms, and their rows follow).

A change here needs a new Alembic revision in signaling/store/migrations/versions (a test compares
the migrated database with this metadata).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

ID = sa.String(64)
TEXT = sa.String(200)


def _room_fk() -> sa.Column[str]:
    return sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE"), nullable=False)


rooms = sa.Table(
    "rooms", metadata,
    sa.Column("room_id", ID, primary_key=True),
    sa.Column("external_id", TEXT, nullable=True),
    sa.Column("settings", sa.JSON, nullable=False),  # RoomSettings.to_json()
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("lock_before_lockdown", sa.JSON, nullable=True),  # LockSettings while the lockdown is on
    # one active room per external id, enforced by the database: two processes creating the same
    # e-journal lesson at once get one room (the loser reads the winner's)
    sa.Index("uq_rooms_active_external_id", "external_id", unique=True,
             sqlite_where=sa.text("ended_at IS NULL AND external_id IS NOT NULL"),
             postgresql_where=sa.text("ended_at IS NULL AND external_id IS NOT NULL")),
    sa.Index("ix_rooms_created_at", "created_at"),
)

# identities kept out of a room: kind "banned" (removed with ban) or "denied" (refused in the waiting room)
room_exclusions = sa.Table(
    "room_exclusions", metadata,
    _room_fk(),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("identity", TEXT, nullable=False),
    sa.PrimaryKeyConstraint("room_id", "kind", "identity"),
)

role_overrides = sa.Table(
    "role_overrides", metadata,
    _room_fk(),
    sa.Column("identity", TEXT, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.PrimaryKeyConstraint("room_id", "identity"),
)

participants = sa.Table(
    "participants", metadata,
    _room_fk(),
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
    sa.PrimaryKeyConstraint("room_id", "participant_id"),
    sa.Index("ix_participants_room_id_family_name", "room_id", "family_name"),
)

attendance = sa.Table(
    "attendance", metadata,
    _room_fk(),
    sa.Column("identity", TEXT, nullable=False),
    sa.Column("name", TEXT, nullable=False),
    sa.Column("family_name", TEXT, nullable=False),
    sa.Column("given_name", TEXT, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("registered", sa.Boolean, nullable=False),
    sa.PrimaryKeyConstraint("room_id", "identity"),
)

attendance_intervals = sa.Table(
    "attendance_intervals", metadata,
    _room_fk(),
    sa.Column("identity", TEXT, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("joined_at", sa.Float, nullable=False),
    sa.Column("left_at", sa.Float, nullable=True),  # NULL: present (or present when the server stopped)
    sa.PrimaryKeyConstraint("room_id", "identity", "seq"),
)

# a deleted message keeps its row (a tombstone: who, to whom, when) with its text emptied, so the
# text is gone from the database and not only hidden
chat_messages = sa.Table(
    "chat_messages", metadata,
    _room_fk(),
    sa.Column("message_id", ID, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # order in the room's log
    sa.Column("from_id", ID, nullable=False),
    sa.Column("from_name", TEXT, nullable=False),
    sa.Column("to_id", ID, nullable=True),
    sa.Column("to_name", TEXT, nullable=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.PrimaryKeyConstraint("room_id", "message_id"),
    sa.Index("ix_chat_messages_room_id_seq", "room_id", "seq"),
)
