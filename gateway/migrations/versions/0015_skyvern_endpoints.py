"""Skyvern's totp_url per credential.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "skyvern_endpoints",
        sa.Column(
            "credential_id",
            sa.String(40),
            sa.ForeignKey("credentials.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("api_key", sa.LargeBinary, nullable=False),
        sa.Column("run", sa.String(200), nullable=True),
        sa.Column("login_id", sa.String(40), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("skyvern_endpoints")
