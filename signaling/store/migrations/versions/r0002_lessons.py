"""Lessons, their people (teachers and students: the roster), occurrences with their rooms, roster attendance reports.

Revision ID: r0002
Revises: r0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(64)
TEXT = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "lessons",
        sa.Column("lesson_id", ID, nullable=False),
        sa.Column("external_id", TEXT, nullable=True),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("subject", TEXT, nullable=False),
        sa.Column("class_id", TEXT, nullable=False),
        sa.Column("class_name", TEXT, nullable=False),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("duration_minutes", sa.Integer, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("recurrence", sa.JSON, nullable=True),
        sa.Column("first_starts_at", sa.Float, nullable=False),
        sa.Column("last_ends_at", sa.Float, nullable=False),
        sa.Column("wait_for_teacher", sa.Boolean, nullable=False),
        sa.Column("room_settings", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("lesson_id", name="pk_lessons"),
    )
    op.create_index("uq_lessons_external_id", "lessons", ["external_id"], unique=True)
    op.create_index("ix_lessons_class_id_first_starts_at", "lessons", ["class_id", "first_starts_at"])
    op.create_index("ix_lessons_first_starts_at", "lessons", ["first_starts_at"])
    op.create_table(
        "lesson_people",
        sa.Column("lesson_id", ID, sa.ForeignKey("lessons.lesson_id", ondelete="CASCADE",
                                                 name="fk_lesson_people_lesson_id_lessons"), nullable=False),
        sa.Column("identity", TEXT, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("family_name", TEXT, nullable=False),
        sa.Column("given_name", TEXT, nullable=False),
        sa.Column("registered", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("lesson_id", "identity", name="pk_lesson_people"),
    )
    op.create_index("ix_lesson_people_identity_kind", "lesson_people", ["identity", "kind"])
    op.create_table(
        "lesson_occurrences",
        sa.Column("lesson_id", ID, sa.ForeignKey("lessons.lesson_id", ondelete="CASCADE",
                                                 name="fk_lesson_occurrences_lesson_id_lessons"), nullable=False),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("room_id", ID, nullable=False),
        sa.Column("roster", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("lesson_id", "starts_at", name="pk_lesson_occurrences"),
    )
    op.create_index("ix_lesson_occurrences_room_id", "lesson_occurrences", ["room_id"])


def downgrade() -> None:
    for table in ("lesson_occurrences", "lesson_people", "lessons"):
        op.drop_table(table)
