"""This feature's tables, on the store's metadata (signaling/store/schema.py; see all_tables.py).

``transcript_lines``: the final captions of a room (revision r0007_transcripts), one row per phrase,
in the order spoken.  They hang off the room (ON DELETE CASCADE: the room's retention takes them
too); ``transcription_retention_days`` deletes them earlier by their end time."""

from __future__ import annotations

import sqlalchemy as sa

from signaling.store.schema import ID, TEXT, metadata

TEXT_MAX = 4000  # characters of one caption line (a 30 s phrase is far below it)

transcript_lines = sa.Table(
    "transcript_lines", metadata,
    sa.Column("line_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE"), nullable=False),
    sa.Column("participant_id", ID, nullable=False),
    sa.Column("name", TEXT, nullable=False),
    sa.Column("start_at", sa.Float, nullable=False),  # seconds since the epoch
    sa.Column("end_at", sa.Float, nullable=False),
    sa.Column("text", sa.String(TEXT_MAX), nullable=False),
    sa.Index("ix_transcript_lines_room_id_start_at", "room_id", "start_at"),
    sa.Index("ix_transcript_lines_end_at", "end_at"),
)

__all__ = ["metadata", "transcript_lines"]
