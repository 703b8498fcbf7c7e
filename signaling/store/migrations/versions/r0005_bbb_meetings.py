"""BigBlueButton meetings: the ids, passwords and metadata a BigBlueButton client created a room with.

Revision ID: r0005
Revises: r0004
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "r0005"
down_revision: str | None = "r0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
