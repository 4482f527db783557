"""Login attempts, links beside codes, backup codes, approvals, waits, unsolicited reports.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(
            sa.Column("report_unsolicited", sa.Boolean, nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("received_codes") as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="code"))
        batch.add_column(sa.Column("link_kind", sa.String(16), nullable=True))
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="code"))
        batch.add_column(sa.Column("match", sa.LargeBinary, nullable=True))
    op.create_table(
        "backup_codes",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column(
            "credential_id",
            sa.String(40),
            sa.ForeignKey("credentials.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("code", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_backup_codes_credential", "backup_codes", ["credential_id", "position"])
    op.create_table(
        "logins",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column(
            "credential_id",
            sa.String(40),
            sa.ForeignKey("credentials.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("last_kind", sa.String(8), nullable=True),
        sa.Column("last_received_at", sa.Float, nullable=True),
        sa.Column("last_step", sa.BigInteger, nullable=True),
        sa.Column("refused_step", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "uq_logins_open",
        "logins",
        ["credential_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_logins_expires", "logins", ["status", "expires_at"])
    op.create_table(
        "code_waits",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("credential_id", sa.String(40), nullable=False),
        sa.Column("until", sa.Float, nullable=False),
    )
    op.create_index("ix_code_waits_credential", "code_waits", ["credential_id", "until"])


def downgrade() -> None:
    op.drop_table("code_waits")
    op.drop_table("logins")
    op.drop_table("backup_codes")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("match")
        batch.drop_column("kind")
    with op.batch_alter_table("received_codes") as batch:
        batch.drop_column("link_kind")
        batch.drop_column("kind")
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("report_unsolicited")
