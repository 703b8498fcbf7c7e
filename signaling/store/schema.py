"""The durable store's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

What is here is what a restart must keep (docs/architecture.md, "The durable store"): rooms with
their settings and lesson roster, bans and denials, role changes, participants (their seats),
attendance intervals, the chat with its tombstones, and the lesson's record of raised hands and
attention checks with their answers (the hand queue of a running lesson is rebuilt from the hands
still up).  Live state (connections, media, rate limits, unmute grants) is not stored.  Every
table but ``rooms`` hangs off a room and goes with it (ON DELETE CASCADE: the retention job
deletes rooms, and their rows follow).

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
    sa.Column("roster", sa.JSON, nullable=True),  # a lesson's roster: identities (sorted list); NULL: none (r0004)
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

# --- webhooks (helper C: signaling/webhooks; revision r0003) ------------------------------------------
# Registrations and the durable outbox: one row per (event, webhook), written behind by the outbox
# (signaling/webhooks/outbox.py); a registration's deliveries go with it.  No foreign key to rooms:
# a delivery outlives the retention of its room (the journal still needs "room_ended").
webhooks = sa.Table(
    "webhooks", metadata,
    sa.Column("webhook_id", ID, primary_key=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),  # ["participant_joined", ...] or ["*"]
    sa.Column("room_id", ID, nullable=True),
    sa.Column("lesson_id", ID, nullable=True),
    sa.Column("secret", TEXT, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries", metadata,
    sa.Column("delivery_id", ID, primary_key=True),
    sa.Column("webhook_id", ID, sa.ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), nullable=False),
    sa.Column("room_id", ID, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),  # order in the outbox; a queue goes by it
    sa.Column("event_id", ID, nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),  # the exact bytes signed and sent
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("retry_since", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | delivered | dead
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_attempt_at", sa.Float, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    # who sends it now (one process at a time, across workers and machines) and until when: taken
    # over by another once the lease has run out (r0011; signaling/webhooks/claims.py)
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("claim_until", sa.Float, nullable=True),
    sa.Index("ix_webhook_deliveries_state_seq", "state", "seq"),  # pending rows on start, by seq
    sa.Index("ix_webhook_deliveries_webhook_id_state_seq", "webhook_id", "state", "seq"),  # REST lists
)


# --- the lesson's record: raised hands and attention checks (r0004_room_records) ---------------
# Every hand raised in a room, from raised to lowered (reason NULL: still up when written).
hands = sa.Table(
    "hands", metadata,
    _room_fk(),
    sa.Column("seq", sa.Integer, nullable=False),  # order of raising in the room
    sa.Column("participant_id", ID, nullable=False),
    sa.Column("raised_at", sa.Float, nullable=False),
    sa.Column("lowered_at", sa.Float, nullable=True),
    sa.Column("lowered_by", ID, nullable=True),  # participant id (NULL: lowered by leaving, or still up)
    sa.Column("reason", sa.String(16), nullable=True),  # lowered | answered | cleared | left
    sa.PrimaryKeyConstraint("room_id", "seq"),
)

# "Are you with us?": who asked what and when ...
attention_requests = sa.Table(
    "attention_requests", metadata,
    _room_fk(),
    sa.Column("attention_id", ID, nullable=False),
    sa.Column("from_id", ID, nullable=False),
    sa.Column("from_name", TEXT, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("room_id", "attention_id"),
    sa.Index("ix_attention_requests_room_id_sent_at", "room_id", "sent_at"),
)

# ... and everyone asked: acked_at NULL is "did not acknowledge"
attention_targets = sa.Table(
    "attention_targets", metadata,
    sa.Column("room_id", ID, nullable=False),
    sa.Column("attention_id", ID, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # order asked
    sa.Column("participant_id", ID, nullable=False),
    sa.Column("name", TEXT, nullable=False),
    sa.Column("acked_at", sa.Float, nullable=True),
    sa.PrimaryKeyConstraint("room_id", "attention_id", "participant_id"),
    sa.ForeignKeyConstraint(["room_id", "attention_id"],
                            ["attention_requests.room_id", "attention_requests.attention_id"], ondelete="CASCADE"),
)


# --- BigBlueButton meetings (signaling/bbb/meetings.py; revision r0005_bbb_meetings) ------------
# What a BigBlueButton client created a room with: its meetingID (one open meeting per meetingID;
# an ended one stays for getMeetingInfo until its room's retention), the passwords that tell
# moderators from attendees, and the meta_* metadata returned by getMeetingInfo.
bbb_meetings = sa.Table(
    "bbb_meetings", metadata,
    sa.Column("internal_id", ID, primary_key=True),  # sha1(meetingID)-createTime, BigBlueButton's form
    sa.Column("meeting_id", sa.String(256), nullable=False),  # BigBlueButton allows 2..256 characters
    _room_fk(),
    sa.Column("name", TEXT, nullable=False),
    sa.Column("attendee_pw", sa.String(64), nullable=False),
    sa.Column("moderator_pw", sa.String(64), nullable=False),
    sa.Column("create_time_ms", sa.BigInteger, nullable=False),
    sa.Column("duration_minutes", sa.Integer, nullable=False),
    sa.Column("max_participants", sa.Integer, nullable=False),
    sa.Column("guest_policy", sa.String(32), nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),  # meta_* parameters, without the prefix
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Index("ix_bbb_meetings_meeting_id_create_time_ms", "meeting_id", "create_time_ms"),
    sa.Index("ix_bbb_meetings_ended_at", "ended_at"),
)

# --- lessons from the e-journal's timetable (signaling/lessons; revision r0002) -------------------
# A lesson, its roster (lesson_people: teachers and students in the journal's order), and the
# occurrences somebody entered, each with its room and the roster it was held with.  The rooms
# themselves are ordinary rooms (their settings carry the lesson); an occurrence names its room
# without a foreign key, so the retention job may delete old rooms and the timetable stays.
lessons = sa.Table(
    "lessons", metadata,
    sa.Column("lesson_id", ID, primary_key=True),
    sa.Column("external_id", TEXT, nullable=True),
    sa.Column("name", TEXT, nullable=False),
    sa.Column("subject", TEXT, nullable=False),
    sa.Column("class_id", TEXT, nullable=False),
    sa.Column("class_name", TEXT, nullable=False),
    sa.Column("starts_at", sa.Float, nullable=False),  # the first start as given (seconds since the epoch)
    sa.Column("duration_minutes", sa.Integer, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("recurrence", sa.JSON, nullable=True),  # Recurrence.to_json()
    sa.Column("first_starts_at", sa.Float, nullable=False),  # for the date-range listing
    sa.Column("last_ends_at", sa.Float, nullable=False),
    sa.Column("wait_for_teacher", sa.Boolean, nullable=False),
    sa.Column("room_settings", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # one lesson per external id, by the database: two journal requests at once make one lesson
    sa.Index("uq_lessons_external_id", "external_id", unique=True),
    sa.Index("ix_lessons_class_id_first_starts_at", "class_id", "first_starts_at"),
    sa.Index("ix_lessons_first_starts_at", "first_starts_at"),
)

lesson_people = sa.Table(
    "lesson_people", metadata,
    sa.Column("lesson_id", ID, sa.ForeignKey("lessons.lesson_id", ondelete="CASCADE"), nullable=False),
    sa.Column("identity", TEXT, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # teacher | student
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", TEXT, nullable=False),
    sa.Column("family_name", TEXT, nullable=False),
    sa.Column("given_name", TEXT, nullable=False),
    sa.Column("registered", sa.Boolean, nullable=False),
    sa.PrimaryKeyConstraint("lesson_id", "identity"),
    sa.Index("ix_lesson_people_identity_kind", "identity", "kind"),  # a teacher's lessons
)

lesson_occurrences = sa.Table(
    "lesson_occurrences", metadata,
    sa.Column("lesson_id", ID, sa.ForeignKey("lessons.lesson_id", ondelete="CASCADE"), nullable=False),
    sa.Column("starts_at", sa.Float, nullable=False),
    sa.Column("room_id", ID, nullable=False),
    sa.Column("roster", sa.JSON, nullable=False),  # Roster.to_record()
    sa.Column("created_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("lesson_id", "starts_at"),
    sa.Index("ix_lesson_occurrences_room_id", "room_id"),
)
