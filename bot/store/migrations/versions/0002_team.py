"""Team features: drill schedules, runs and answers, onboarding progress, share consent,
`cards.has_question`, and the time indexes retention and the team report read by.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode keeps SQLite working; adding a column with a constant default is something
    # SQLite does in place, so no table is copied (recreate="never") even when large.
    with op.batch_alter_table("cards", recreate="never") as batch:
        batch.add_column(sa.Column("has_question", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.create_index("ix_cards_created_at", ["created_at"])
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.add_column(sa.Column("share_consent", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("conversations") as batch:
        batch.create_index("ix_conversations_updated_at", ["updated_at"])
    with op.batch_alter_table("processed_events") as batch:
        batch.create_index("ix_processed_events_created_at", ["created_at"])

    op.create_table(
        "drill_schedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("cron", sa.String(128), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("drill_id", sa.String(128), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_drill_schedules_chat", "drill_schedules", ["channel", "chat_id"])
    op.create_index("ix_drill_schedules_next_run_at", "drill_schedules", ["next_run_at"])

    op.create_table(
        "drill_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("drill_id", sa.String(128), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("opened_by", sa.String(128), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_ref", sa.String(64), nullable=True),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_drill_runs_chat", "drill_runs", ["channel", "chat_id", "opened_at"])
    op.create_index("ix_drill_runs_message", "drill_runs", ["channel", "chat_id", "message_ref"])
    op.create_index("ix_drill_runs_closes_at", "drill_runs", ["closes_at"])

    op.create_table(
        "drill_answers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("has_question", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["run_id"], ["drill_runs.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("run_id", "channel", "user_id", name="uq_drill_answers_run_user"),
    )
    op.create_index("ix_drill_answers_user", "drill_answers", ["channel", "user_id"])
    op.create_index("ix_drill_answers_created_at", "drill_answers", ["created_at"])

    op.create_table(
        "onboarding_progress",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Text(), nullable=False),  # JSON list of step numbers
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("onboarding_progress")
    op.drop_index("ix_drill_answers_created_at", table_name="drill_answers")
    op.drop_index("ix_drill_answers_user", table_name="drill_answers")
    op.drop_table("drill_answers")
    op.drop_index("ix_drill_runs_closes_at", table_name="drill_runs")
    op.drop_index("ix_drill_runs_message", table_name="drill_runs")
    op.drop_index("ix_drill_runs_chat", table_name="drill_runs")
    op.drop_table("drill_runs")
    op.drop_index("ix_drill_schedules_next_run_at", table_name="drill_schedules")
    op.drop_index("ix_drill_schedules_chat", table_name="drill_schedules")
    op.drop_table("drill_schedules")
    with op.batch_alter_table("processed_events") as batch:
        batch.drop_index("ix_processed_events_created_at")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_updated_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("share_consent")
    with op.batch_alter_table("cards") as batch:
        batch.drop_index("ix_cards_created_at")
        batch.drop_column("has_question")
