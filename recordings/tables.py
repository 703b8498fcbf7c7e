"""This feature's tables, on the store's metadata (signaling/store/schema.py; see all_tables.py).

One row per recording (revision r0006_recordings; group_id and group_name r0010).  No foreign key to
rooms: the rooms' retention may delete a room while its recordings are kept for their own retention
(recording_retention_days).
The track list is JSON (it is read and written whole, with the manifest as its source)."""

from __future__ import annotations

import sqlalchemy as sa

from signaling.store.schema import ID, TEXT, metadata

recordings = sa.Table(
    "recordings", metadata,
    sa.Column("recording_id", ID, primary_key=True),
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
    sa.Column("group_id", ID, nullable=True),  # r0010: the breakout group recorded (None: the main room)
    sa.Column("group_name", TEXT, nullable=True),
    sa.Index("ix_recordings_room_id_started_at", "room_id", "started_at"),
    sa.Index("ix_recordings_external_id", "external_id"),
    sa.Index("ix_recordings_started_at", "started_at"),
    sa.Index("ix_recordings_state", "state"),
)

__all__ = ["metadata", "recordings"]
