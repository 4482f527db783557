"""The tables, declared with sqlmodel.

Times are UNIX seconds (floats): the same on SQLite and PostgreSQL, cheap to
compare and index.  Columns ending in a blob type hold vault ciphertext only;
nothing secret is ever stored in clear.  The migrations under
``gateway/migrations`` create these tables; a test checks that the models and
the migrated schema agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    created_at: float


class ApiKey(SQLModel, table=True):
    """An API key, kept only as a keyed hash.  ``tenant_id`` is null for admin keys."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str | None = Field(
        default=None,
        sa_column=Column(String(40), ForeignKey("tenants.id", ondelete="CASCADE"), index=True),
    )
    #: ``admin``, ``owner``, ``manager`` or ``agent`` (see ``gateway.roles``).
    role: str = Field(max_length=16)
    key_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    prefix: str = Field(max_length=24)
    created_at: float
    name: str = Field(default="", max_length=200)
    #: The credentials this key may reach, as a JSON list; null for all of them.
    credential_ids: str | None = Field(default=None, sa_column=Column(Text))
    expires_at: float | None = None
    revoked_at: float | None = None
    #: Written in batches every few seconds, never on the request's own path.
    last_used_at: float | None = None


class AuditHead(SQLModel, table=True):
    """The end of a tenant's audit chain: its last ``seq`` and ``hash``.

    On PostgreSQL an append locks this row, so two replicas appending to one
    tenant's chain take turns and the chain never forks.
    """

    __tablename__ = "audit_heads"

    tenant_id: str = Field(primary_key=True, max_length=40)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)


class AuditEvent(SQLModel, table=True):
    """One link of a tenant's audit chain, stored exactly as the API returns it.

    ``actor`` is the canonical JSON of the actor object.  No column ever
    holds a code, secret, password, link, key or message text.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "seq"),
        Index("ix_audit_events_credential", "tenant_id", "credential_id", "seq"),
        Index("ix_audit_events_day", "tenant_id", "at_ts"),
    )

    tenant_id: str = Field(max_length=40)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    at: str = Field(max_length=32)
    #: ``at`` as UNIX seconds, for the per-day charts.
    at_ts: float
    actor: str = Field(max_length=200)
    action: str = Field(max_length=40)
    credential_id: str | None = Field(default=None, max_length=40)
    object_id: str | None = Field(default=None, max_length=40)
    outcome: str = Field(max_length=16)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Credential(SQLModel, table=True):
    """One account an agent logs into, with its own inbox and data key."""

    __tablename__ = "credentials"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    name: str = Field(max_length=200)
    username: str | None = Field(default=None, max_length=320)
    inbox: str = Field(max_length=64, unique=True)
    phone_number: str | None = Field(default=None, max_length=16, unique=True)
    #: Twilio's id (``PN...``) of a number the gateway bought, so it can release it.
    phone_sid: str | None = Field(default=None, max_length=40)
    data_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_version: int = Field(index=True)
    password: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: float
    updated_at: float
    extraction_pattern: str | None = Field(default=None, max_length=200)
    #: JSON list of sender domains whose mail may hand out codes; null: any.
    allowed_senders: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: Whether a code or link arriving while nobody signs in fires ``code.unsolicited``
    #: (off for a shared account that people also use).
    report_unsolicited: bool = Field(default=True)


class Authenticator(SQLModel, table=True):
    """A TOTP or HOTP secret, sealed with its credential's data key."""

    __tablename__ = "authenticators"

    credential_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("credentials.id", ondelete="CASCADE"), primary_key=True
        )
    )
    tenant_id: str = Field(max_length=40)
    kind: str = Field(max_length=8)
    digits: int
    period: int
    algorithm: str = Field(max_length=8)
    counter: int = Field(sa_column=Column(BigInteger, nullable=False))
    secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    issuer: str | None = Field(default=None, max_length=200)
    label: str | None = Field(default=None, max_length=200)
    created_at: float


class ReceivedCode(SQLModel, table=True):
    """A code extracted from an email or SMS, waiting (sealed) for its agent."""

    __tablename__ = "received_codes"
    __table_args__ = (
        Index("ix_received_codes_credential", "credential_id", "received_at"),
        Index("ix_received_codes_expires", "expires_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    credential_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
        )
    )
    source: str = Field(max_length=8)
    #: ``code`` (a one-time code) or ``link`` (a sign-in or confirmation link); both sealed.
    kind: str = Field(default="code", max_length=8)
    #: For a link: ``sign_in``, ``confirm``, ``approve`` or ``reset``.
    link_kind: str | None = Field(default=None, max_length=16)
    code: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sender: str | None = Field(default=None, max_length=320)
    received_at: float
    expires_at: float


def _credential_fk(*, primary_key: bool = False) -> Column[str]:
    return Column(
        String(40),
        ForeignKey("credentials.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


class InboundSeen(SQLModel, table=True):
    """A provider's message id already taken (Twilio retries and fallbacks deliver twice)."""

    __tablename__ = "inbound_seen"
    __table_args__ = (
        PrimaryKeyConstraint("provider", "message_id"),
        Index("ix_inbound_seen_at", "seen_at"),
    )

    provider: str = Field(max_length=16)
    message_id: str = Field(max_length=64)
    seen_at: float


class SmsDevice(SQLModel, table=True):
    """A phone running SMS Gateway for Android whose SIM receives a credential's texts.

    ``sim_number`` null means every SIM of the device.  The signing key is
    sealed with the credential's data key.
    """

    __tablename__ = "sms_devices"
    __table_args__ = (UniqueConstraint("device_id", "sim_number"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    credential_id: str = Field(sa_column=_credential_fk())
    device_id: str = Field(max_length=64, index=True)
    sim_number: int | None = Field(default=None)
    signing_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: float


class Forward(SQLModel, table=True):
    """A rule: copy each message reaching a credential to a person."""

    __tablename__ = "forwards"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    credential_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    channel: str = Field(max_length=8)
    target: str = Field(max_length=320)
    created_at: float
    last_status: str | None = Field(default=None, max_length=16)
    last_error: str | None = Field(default=None, max_length=300)
    last_attempt_at: float | None = None


class ForwardOutbox(SQLModel, table=True):
    """One copy waiting to be sent, its content sealed with the credential's data key.

    ``state`` is ``pending`` (send when ``next_attempt_at`` comes) or
    ``sending`` (an attempt was recorded; a replica holding ``lease_until``
    is on it).  A row is deleted once its copy is sent or given up.
    """

    __tablename__ = "forward_outbox"
    __table_args__ = (Index("ix_forward_outbox_due", "next_attempt_at"),)

    id: str = Field(primary_key=True, max_length=40)
    forward_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("forwards.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    tenant_id: str = Field(max_length=40)
    credential_id: str = Field(max_length=40)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = Field(max_length=8)
    attempts: int
    next_attempt_at: float
    lease_until: float
    last_error: str | None = Field(default=None, max_length=300)
    created_at: float


class Webhook(SQLModel, table=True):
    """A tenant's endpoint; its signing secrets are sealed with its own data key."""

    __tablename__ = "webhooks"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    url: str = Field(max_length=2048)
    #: The subscribed event types, comma-separated with a comma at each end.
    events: str = Field(max_length=500)
    enabled: bool
    data_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_version: int = Field(index=True)
    secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    previous_secret: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    previous_until: float | None = None
    disabled_reason: str | None = Field(default=None, max_length=300)
    created_at: float


class WebhookDelivery(SQLModel, table=True):
    """One event on its way to one endpoint; ``id`` is the stable ``webhook-id``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "next_attempt_at"),)

    id: str = Field(primary_key=True, max_length=100)
    webhook_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    tenant_id: str = Field(max_length=40)
    event: str = Field(max_length=40)
    #: The JSON body, metadata only, byte for byte as it is signed and sent.
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: float
    attempts: int
    next_attempt_at: float
    lease_until: float
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=300)


class Interaction(SQLModel, table=True):
    """A request for a person to give a code; the code is sealed, the token kept as a hash."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_expires", "status", "expires_at"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    credential_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    prompt: str | None = Field(default=None, max_length=500)
    #: ``pending``, ``submitted`` (a code waits), ``delivered`` or ``expired``.
    status: str = Field(max_length=10)
    token_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    #: The token itself, sealed: the webhook sender puts the link into
    #: ``interaction.code_required`` when it sends it, so no queued event holds it.
    submit_token: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    code: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    attempts: int
    created_at: float
    expires_at: float
    submitted_at: float | None = None
    #: ``code`` (a person types a code) or ``approval`` (a person approves or denies).
    kind: str = Field(default="code", max_length=10)
    #: The number to match on the login page, sealed; shown only behind the submit link.
    match: bytes | None = Field(default=None, sa_column=Column(LargeBinary))


class Replica(SQLModel, table=True):
    """A running gateway process, as its last heartbeat saw it."""

    __tablename__ = "replicas"

    id: str = Field(primary_key=True, max_length=40)
    hostname: str = Field(max_length=200)
    pid: int
    started_at: float
    seen_at: float = Field(index=True)
    draining: bool


class WebhookAttempt(SQLModel, table=True):
    """One attempt at delivering an event to an endpoint, as the pages list them.

    Queued deliveries are deleted once delivered or given up; this keeps
    what became of the recent ones (never a body or a secret), for a week.
    """

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_tenant", "tenant_id", "at"),
        Index("ix_webhook_attempts_at", "at"),  # the week-old sweep
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    webhook_id: str = Field(
        sa_column=Column(String(40), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False)
    )
    event: str = Field(max_length=40)
    #: The attempt's number for its delivery (1 for the first).
    attempt: int
    at: float
    #: ``delivered``, ``retrying``, ``given_up`` or ``disabled`` (the endpoint answered 410).
    outcome: str = Field(max_length=10)
    #: The endpoint's HTTP status; None when it did not answer.
    status: int | None = None
    error: str | None = Field(default=None, max_length=300)


class WebSession(SQLModel, table=True):
    """A person signed in to the authentication center with an owner's or manager's key.

    The session token is kept only as a keyed hash; the key itself is never
    stored here, only its id, so revoking the key ends the session.
    """

    __tablename__ = "web_sessions"

    token_hash: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    tenant_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    key_id: str = Field(max_length=40, index=True)
    created_at: float
    last_seen_at: float
    #: The absolute end; the idle end is ``last_seen_at`` plus the idle limit.
    expires_at: float = Field(index=True)


class MessageCount(SQLModel, table=True):
    """Messages received per credential, day (UTC) and channel, for the charts.

    Counted in the same write that stores the messages, one row per group of
    a batch; kept for about 35 days.
    """

    __tablename__ = "message_counts"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "credential_id", "day", "channel"),
        Index("ix_message_counts_day", "day"),
    )

    tenant_id: str = Field(max_length=40)
    credential_id: str = Field(max_length=40)
    #: ``YYYY-MM-DD`` in UTC.
    day: str = Field(max_length=10)
    channel: str = Field(max_length=8)
    #: Messages that reached the credential (with or without a code).
    messages: int
    #: Those of them a code was read from.
    codes: int


class BackupCode(SQLModel, table=True):
    """One of a credential's recovery codes, sealed; taken (deleted) once."""

    __tablename__ = "backup_codes"
    __table_args__ = (Index("ix_backup_codes_credential", "credential_id", "position"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    credential_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
        )
    )
    position: int
    code: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Login(SQLModel, table=True):
    """An agent signing in to a credential's account: what it was handed and what was refused.

    At most one login per credential is ``open``: a unique index over the
    open rows makes the database refuse a second, on any replica.
    """

    __tablename__ = "logins"
    __table_args__ = (
        Index(
            "uq_logins_open",
            "credential_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_logins_expires", "status", "expires_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    credential_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False
        )
    )
    #: ``open``, ``succeeded`` or ``failed``.
    status: str = Field(max_length=10)
    started_at: float
    expires_at: float
    finished_at: float | None = None
    #: Codes and links received before this are never handed to the login.
    not_before: float
    #: What was handed out last: ``code``, ``link``, ``totp`` or ``hotp``.
    last_kind: str | None = Field(default=None, max_length=8)
    last_received_at: float | None = None
    last_step: int | None = Field(default=None, sa_column=Column(BigInteger))
    #: TOTP: time steps up to this one were refused by the site.
    refused_step: int | None = Field(default=None, sa_column=Column(BigInteger))


class CodeWait(SQLModel, table=True):
    """An agent waiting on a credential (a long poll), so a code arriving is not unsolicited."""

    __tablename__ = "code_waits"
    __table_args__ = (
        Index("ix_code_waits_credential", "credential_id", "until"),
        Index("ix_code_waits_until", "until"),  # the lapsed-waits sweep
    )

    id: str = Field(primary_key=True, max_length=40)
    credential_id: str = Field(max_length=40)
    until: float


metadata = SQLModel.metadata


class SkyvernEndpoint(SQLModel, table=True):
    """A credential's ``totp_url`` for Skyvern: its token's keyed hash, Skyvern's API key
    (sealed under the credential's data key; it checks the requests' signatures), and the
    Skyvern run whose login is open."""

    __tablename__ = "skyvern_endpoints"

    credential_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("credentials.id", ondelete="CASCADE"), primary_key=True
        )
    )
    tenant_id: str = Field(max_length=40)
    token_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    api_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: ``workflow_run_id`` (or ``task_id``) of the run that polled last, and its login.
    run: str | None = Field(default=None, max_length=200)
    login_id: str | None = Field(default=None, max_length=40)
    created_at: float
