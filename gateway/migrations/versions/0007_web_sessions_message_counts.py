"""The authentication center's sessions; messages per day for its charts; webhook attempts.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(40),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_web_sessions_tenant_id", "web_sessions", ["tenant_id"])
    op.create_index("ix_web_sessions_key_id", "web_sessions", ["key_id"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_table(
        "message_counts",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("credential_id", sa.String(40), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("codes", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "credential_id", "day", "channel"),
    )
    op.create_index("ix_message_counts_day", "message_counts", ["day"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column(
            "webhook_id",
            sa.String(40),
            sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
    )
    op.create_index("ix_webhook_attempts_tenant", "webhook_attempts", ["tenant_id", "at"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("message_counts")
    op.drop_table("web_sessions")
