"""A webhook delivery's claim: the process that sends it now and until when (several workers and
machines on one outbox: each delivery is sent by one of them at a time; signaling/webhooks/claims.py).

Revision ID: r0011
Revises: r0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0011"
down_revision: str | None = "r0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # rows written before: unclaimed (NULL), taken by the first process that looks
    op.add_column("webhook_deliveries", sa.Column("claimed_by", sa.String(200), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("claim_until", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("claim_until")
        batch.drop_column("claimed_by")
