"""Codes received by email or SMS, and per-credential extraction settings.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "received_codes",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column(
            "credential_id",
            sa.String(40),
            sa.ForeignKey("credentials.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("code", sa.LargeBinary, nullable=False),
        sa.Column("sender", sa.String(320), nullable=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_received_codes_credential", "received_codes", ["credential_id", "received_at"]
    )
    op.create_index("ix_received_codes_expires", "received_codes", ["expires_at"])
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("extraction_pattern", sa.String(200), nullable=True))
        batch.add_column(sa.Column("allowed_senders", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("allowed_senders")
        batch.drop_column("extraction_pattern")
    op.drop_table("received_codes")
