"""Whiteboards: Yjs state and materials (whiteboard/tables.py).

Revision ID: r0009
Revises: r0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0009"
down_revision: str | None = "r0008"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(64)


def _room_fk(table: str) -> sa.Column[str]:
    return sa.Column("room_id", ID, sa.ForeignKey("rooms.room_id", ondelete="CASCADE",
                                                  name=f"fk_{table}_room_id_rooms"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "boards",
        _room_fk("boards"),
        sa.Column("group_id", ID, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("snapshot", sa.LargeBinary, nullable=True),
        sa.Column("snapshot_seq", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("room_id", "group_id", name="pk_boards"),
    )
    op.create_table(
        "board_updates",
        _room_fk("board_updates"),
        sa.Column("group_id", ID, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("room_id", "group_id", "seq", name="pk_board_updates"),
    )
    op.create_table(
        "board_assets",
        sa.Column("asset_id", ID, nullable=False),
        _room_fk("board_assets"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("asset_id", name="pk_board_assets"),
    )
    op.create_index("ix_board_assets_room_id_kind", "board_assets", ["room_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_board_assets_room_id_kind", table_name="board_assets")
    op.drop_table("board_assets")
    op.drop_table("board_updates")
    op.drop_table("boards")
