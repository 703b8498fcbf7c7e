"""Webhook registrations and the durable outbox of deliveries (pending, delivered, dead).

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "r0003"
down_revision: str | None = "r0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
