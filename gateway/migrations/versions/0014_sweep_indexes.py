"""Indexes for the sweepers on large stores: webhook attempts by time, waits by end time.

The week-old webhook attempts and the lapsed long-poll records are deleted
by their time alone; the indexes that began with the tenant or the
credential could not serve those statements, so each sweep read the whole
table (a million attempts, say).

Revision ID: 0014
Revises: 0008
"""

from alembic import op

revision = "0014"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_webhook_attempts_at", "webhook_attempts", ["at"])
    op.create_index("ix_code_waits_until", "code_waits", ["until"])


def downgrade() -> None:
    op.drop_index("ix_code_waits_until", "code_waits")
    op.drop_index("ix_webhook_attempts_at", "webhook_attempts")
