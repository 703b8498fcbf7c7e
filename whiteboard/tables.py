"""The whiteboard's tables, on the store's metadata (signaling/store/schema.py; see all_tables.py);
revision r0009.  A board is (room, group); '' is the room's own board.  Its document is a snapshot
plus the updates saved after it (one row per write-behind flush, ~1 s of drawing: the history the
recording renders a page from at a given time); pages, rights and the followed page are JSON beside
it.  Assets are the pictures behind pages (an uploaded picture, a rendered PDF page) and exports."""

from __future__ import annotations

import sqlalchemy as sa

from signaling.store.schema import ID, TEXT, metadata

boards = sa.Table(
    "boards", metadata,
    sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE"), nullable=False),
    sa.Column("group_id", ID, nullable=False),  # '' = the room's own board
    sa.Column("meta", sa.JSON, nullable=False),  # BoardMeta.to_json(): pages, rights, follow
    sa.Column("snapshot", sa.LargeBinary, nullable=True),  # the whole document up to snapshot_seq
    sa.Column("snapshot_seq", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("room_id", "group_id"),
)

board_updates = sa.Table(
    "board_updates", metadata,
    sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE"), nullable=False),
    sa.Column("group_id", ID, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # when it was saved (epoch s): the history's clock
    sa.Column("data", sa.LargeBinary, nullable=False),  # one Yjs update
    sa.PrimaryKeyConstraint("room_id", "group_id", "seq"),
)

board_assets = sa.Table(
    "board_assets", metadata,
    sa.Column("asset_id", ID, nullable=False),
    sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # background | export
    sa.Column("name", TEXT, nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("asset_id"),
    sa.Index("ix_board_assets_room_id_kind", "room_id", "kind"),
)

__all__ = ["board_assets", "board_updates", "boards", "metadata"]
