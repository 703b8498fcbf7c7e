"""Lessons, their people (teachers and students: the roster), occurrences with their rooms, roster attendance reports.

Revision ID: r0002
Revises: r0001
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
