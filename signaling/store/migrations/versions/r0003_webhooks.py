"""Webhook registrations and the durable outbox of deliveries (pending, delivered, dead).

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0003"
down_revision: str | None = "r0002"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(64)
TEXT = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("webhook_id", ID, nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("room_id", ID, nullable=True),
        sa.Column("lesson_id", ID, nullable=True),
        sa.Column("secret", TEXT, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", name="pk_webhooks"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", ID, nullable=False),
        sa.Column("webhook_id", ID, sa.ForeignKey("webhooks.webhook_id", ondelete="CASCADE",
                                                  name="fk_webhook_deliveries_webhook_id_webhooks"),
                  nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("retry_since", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_attempt_at", sa.Float, nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_state_seq", "webhook_deliveries", ["state", "seq"])
    op.create_index("ix_webhook_deliveries_webhook_id_state_seq", "webhook_deliveries",
                    ["webhook_id", "state", "seq"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")  # its indexes go with it
    op.drop_table("webhooks")
