"""The lesson's record beyond chat and attendance: raised hands and attention checks with their answers.

Revision ID: r0004
Revises: r0003
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "r0004"
down_revision: str | None = "r0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
