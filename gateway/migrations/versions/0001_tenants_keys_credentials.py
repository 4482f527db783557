"""The first schema: tenants, API keys and credentials.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "tenant_id", sa.String(40), sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("prefix", sa.String(24), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(40),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("username", sa.String(320), nullable=True),
        sa.Column("inbox", sa.String(64), nullable=False, unique=True),
        sa.Column("phone_number", sa.String(16), nullable=True, unique=True),
        sa.Column("data_key", sa.LargeBinary, nullable=False),
        sa.Column("key_version", sa.Integer, nullable=False, index=True),
        sa.Column("password", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("credentials")
    op.drop_table("api_keys")
    op.drop_table("tenants")
