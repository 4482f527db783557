"""API keys with roles, names, credential limits, expiry and revocation; the audit trail.

Tenant keys made before roles existed (role ``tenant``) become ``owner`` keys,
so they keep doing everything they did.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("name", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("credential_ids", sa.Text, nullable=True))
        batch.add_column(sa.Column("expires_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.Float, nullable=True))
    op.execute("UPDATE api_keys SET role = 'owner', name = 'tenant key' WHERE role = 'tenant'")
    op.execute("UPDATE api_keys SET name = 'admin key' WHERE role = 'admin'")
    op.create_table(
        "audit_heads",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("at_ts", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("credential_id", sa.String(40), nullable=True),
        sa.Column("object_id", sa.String(40), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "seq"),
    )
    op.create_index(
        "ix_audit_events_credential", "audit_events", ["tenant_id", "credential_id", "seq"]
    )
    op.create_index("ix_audit_events_day", "audit_events", ["tenant_id", "at_ts"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("audit_heads")
    op.execute("UPDATE api_keys SET role = 'tenant' WHERE role <> 'admin'")
    with op.batch_alter_table("api_keys") as batch:
        for column in ("last_used_at", "revoked_at", "expires_at", "credential_ids", "name"):
            batch.drop_column(column)
