"""Practice sessions against a simulated buyer: one row per session, holding the
`PracticeSession` JSON (redacted words only), found by its conversation.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "practice_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("session", sa.Text(), nullable=False),  # PracticeSession.model_dump_json()
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_practice_sessions_key", "practice_sessions", ["channel", "user_id", "conversation_id"]
    )
    op.create_index("ix_practice_sessions_created_at", "practice_sessions", ["created_at"])
    op.create_index("ix_practice_sessions_updated_at", "practice_sessions", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_practice_sessions_updated_at", table_name="practice_sessions")
    op.drop_index("ix_practice_sessions_created_at", table_name="practice_sessions")
    op.drop_index("ix_practice_sessions_key", table_name="practice_sessions")
    op.drop_table("practice_sessions")
