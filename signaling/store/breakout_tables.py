"""This feature's tables, on the store's metadata (signaling/store/schema.py; see all_tables.py).

- ``breakout_templates``: groups saved for a class (names and the students' identities, not
  participant ids: a template outlives the lesson it was made in), one name per class.
- ``breakout_stints``: who was in which breakout group when (attendance), one row per stay; a
  visiting host or co-host is marked ``visitor``.  Rows name their room without a foreign key (the
  room's row is written behind; the stints are written at once), indexed by room.
"""

from __future__ import annotations

import sqlalchemy as sa

from signaling.store.schema import ID, TEXT, metadata

breakout_templates = sa.Table(
    "breakout_templates", metadata,
    sa.Column("template_id", ID, primary_key=True),
    sa.Column("class_id", TEXT, nullable=False),
    sa.Column("name", TEXT, nullable=False),
    sa.Column("groups", sa.JSON, nullable=False),  # [{"name", "identities": [...]}]
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("class_id", "name"),
)

breakout_stints = sa.Table(
    "breakout_stints", metadata,
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
    sa.PrimaryKeyConstraint("room_id", "session_id", "participant_id", "joined_at"),
    sa.Index("ix_breakout_stints_room_id_joined_at", "room_id", "joined_at"),
)

__all__ = ["breakout_stints", "breakout_templates", "metadata"]
