"""Event claims with a lease, and replays that give the same reply.

`processed_events`: who claimed a platform event and when (`claimant`, `claimed_at`), and
when its work was done (`done_at`). A claim not done within the lease may be taken over by
a retry of the event (bot/core/delivery.py). Rows already there were claimed by a version
that handled an event as soon as it claimed it: they are done. The columns stay nullable,
so a replica of the previous version still running during a rolling update can insert its
claims (read as done, as that version handles what it claims).

`conversations.event_id` and `state_before`, `cards.event_id`: the event whose work wrote
the row (and the conversation as it was before that work), so that a take-over rolls back
what the dead claimant wrote before handling the event again.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without a default: SQLite adds them in place, no table is copied.
    with op.batch_alter_table("processed_events", recreate="never") as batch:
        batch.add_column(sa.Column("claimant", sa.String(128), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("done_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE processed_events SET claimed_at = created_at, done_at = created_at")
    with op.batch_alter_table("conversations", recreate="never") as batch:
        batch.add_column(sa.Column("event_id", sa.String(191), nullable=True))
        batch.add_column(sa.Column("state_before", sa.Text(), nullable=True))
    with op.batch_alter_table("cards", recreate="never") as batch:
        batch.add_column(sa.Column("event_id", sa.String(191), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.drop_column("event_id")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("state_before")
        batch.drop_column("event_id")
    with op.batch_alter_table("processed_events") as batch:
        batch.drop_column("done_at")
        batch.drop_column("claimed_at")
        batch.drop_column("claimant")
