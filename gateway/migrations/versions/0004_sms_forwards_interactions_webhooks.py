"""Inbound SMS dedupe and devices, forwards and their outbox, webhooks, interactions.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{table}.id", ondelete="CASCADE")


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("phone_sid", sa.String(40), nullable=True))
    op.create_table(
        "inbound_seen",
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("provider", "message_id"),
    )
    op.create_index("ix_inbound_seen_at", "inbound_seen", ["seen_at"])

    op.create_table(
        "sms_devices",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("credential_id", sa.String(40), _fk("credentials"), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("sim_number", sa.Integer, nullable=True),
        sa.Column("signing_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("device_id", "sim_number"),
    )
    op.create_index("ix_sms_devices_device_id", "sms_devices", ["device_id"])

    op.create_table(
        "forwards",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("credential_id", sa.String(40), _fk("credentials"), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_status", sa.String(16), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("last_attempt_at", sa.Float, nullable=True),
    )
    op.create_index("ix_forwards_credential_id", "forwards", ["credential_id"])

    op.create_table(
        "forward_outbox",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("forward_id", sa.String(40), _fk("forwards"), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("credential_id", sa.String(40), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_forward_outbox_due", "forward_outbox", ["next_attempt_at"])
    op.create_index("ix_forward_outbox_forward_id", "forward_outbox", ["forward_id"])

    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), _fk("tenants"), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.String(500), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("data_key", sa.LargeBinary, nullable=False),
        sa.Column("key_version", sa.Integer, nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("previous_secret", sa.LargeBinary, nullable=True),
        sa.Column("previous_until", sa.Float, nullable=True),
        sa.Column("disabled_reason", sa.String(300), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_webhooks_tenant_id", "webhooks", ["tenant_id"])
    op.create_index("ix_webhooks_key_version", "webhooks", ["key_version"])

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("webhook_id", sa.String(40), _fk("webhooks"), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"])
    op.create_index("ix_webhook_deliveries_webhook_id", "webhook_deliveries", ["webhook_id"])

    op.create_table(
        "interactions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("credential_id", sa.String(40), _fk("credentials"), nullable=False),
        sa.Column("prompt", sa.String(500), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("submit_token", sa.LargeBinary, nullable=True),
        sa.Column("code", sa.LargeBinary, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=True),
    )
    op.create_index("ix_interactions_expires", "interactions", ["status", "expires_at"])
    op.create_index("ix_interactions_credential_id", "interactions", ["credential_id"])


def downgrade() -> None:
    for table in (
        "interactions",
        "webhook_deliveries",
        "webhooks",
        "forward_outbox",
        "forwards",
        "sms_devices",
        "inbound_seen",
    ):
        op.drop_table(table)
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("phone_sid")
