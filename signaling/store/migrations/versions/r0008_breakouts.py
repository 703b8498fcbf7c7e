"""Breakout groups, templates and who was in which group (signaling/store/breakout_tables.py).

Revision ID: r0008
Revises: r0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "r0008"
down_revision: str | None = "r0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
