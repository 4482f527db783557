"""The tables, declared with sqlmodel.

Times are UNIX seconds (floats): the same on SQLite and PostgreSQL, cheap to
compare and index.  Columns ending in a blob type hold vault ciphertext only;
nothing secret is ever stored in clear.  The migrations under
``gateway/migrations`` create these tables; a test checks that the models and
the migrated schema agree.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, LargeBinary, String, Text
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
    role: str = Field(max_length=16)
    key_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    prefix: str = Field(max_length=24)
    created_at: float


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
    data_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_version: int = Field(index=True)
    password: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: float
    updated_at: float
    extraction_pattern: str | None = Field(default=None, max_length=200)
    #: JSON list of sender domains whose mail may hand out codes; null: any.
    allowed_senders: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


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
    code: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sender: str | None = Field(default=None, max_length=320)
    received_at: float
    expires_at: float


metadata = SQLModel.metadata
