"""What the gateway answers, as small frozen objects whose reprs hold no secret.

A code, a sign-in link, a backup code, a password, an API key, a webhook
secret and a submit link's token never show in a ``repr`` or ``str``, so an
object that ends up in a log line, a traceback or a language model's context
does not leak them.  The value is there for the code that needs it:
``Code.value``, ``Link.url``, ``BackupCode.value``, ``Secret.reveal()``,
``Interaction.submit_url``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit


class Secret:
    """A string that does not show itself: ``reveal()`` gives it, ``repr`` does not."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<hidden>')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]  # compared in constant time, never hashed


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    """A one-time code handed out by the gateway (once).  Its repr hides the code.

    ``source`` is ``totp``, ``hotp``, ``email``, ``sms`` or ``user`` (a person
    gave it).  ``expires_at`` is the end of a TOTP code's time step;
    ``received_at`` when the gateway received an email, text or answer (its
    clock); ``sender`` who sent the message.
    """

    value: str = field(repr=False)
    source: str
    expires_at: datetime | None = None
    received_at: datetime | None = None
    sender: str | None = None

    def __repr__(self) -> str:
        parts = [f"source={self.source!r}", f"value=<{len(self.value)} characters>"]
        if self.expires_at is not None:
            parts.append(f"expires_at={_when(self.expires_at)!r}")
        if self.received_at is not None:
            parts.append(f"received_at={_when(self.received_at)!r}")
        return f"Code({', '.join(parts)})"

    def __str__(self) -> str:
        return repr(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """A sign-in or confirmation link handed out by the gateway (once).  Its repr hides the URL.

    The URL is as good as a password until it is used: open it in the
    agent's own browser page (``browser.open_link``), never show it to a
    language model or a log.  ``kind`` is what the message asks for
    (``sign_in``, ``confirm``, ``approve``, ``reset``) when the gateway
    could tell; ``source`` is ``email`` or ``sms``.
    """

    url: str = field(repr=False)
    kind: str | None
    source: str
    received_at: datetime | None = None
    sender: str | None = None

    def __repr__(self) -> str:
        parts = [f"kind={self.kind!r}", f"source={self.source!r}", "url=<hidden>"]
        if self.received_at is not None:
            parts.append(f"received_at={_when(self.received_at)!r}")
        return f"Link({', '.join(parts)})"

    def __str__(self) -> str:
        return repr(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupCode:
    """One of a credential's backup (recovery) codes, handed out once.  Its repr hides it."""

    value: str = field(repr=False)
    #: How many are left after this one.
    remaining: int

    def __repr__(self) -> str:
        return f"BackupCode(value=<{len(self.value)} characters>, remaining={self.remaining})"

    def __str__(self) -> str:
        return repr(self)


@dataclass(frozen=True, slots=True)
class Authenticator:
    """A credential's TOTP/HOTP parameters (the secret never leaves the gateway)."""

    kind: str
    digits: int
    period: int
    algorithm: str


@dataclass(frozen=True, slots=True)
class Credential:
    """One account an agent logs into.  ``inbox`` gets its 2FA mail; ``phone_number`` its texts."""

    id: str
    name: str
    username: str | None
    inbox: str
    phone_number: str | None = None
    has_password: bool = False
    authenticator: Authenticator | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Interaction:
    """A request for a person to give a code, or to approve a sign-in.

    ``status`` is ``pending``, ``answered`` (a code was given), ``approved``,
    ``denied`` or ``expired``.

    ``submit_url`` (only in the answer that created it) is a single-use link
    whose token is the authority to answer: give it to the person, not to a
    log.  The repr shows the link's origin only.
    """

    id: str
    credential_id: str
    status: str
    expires_at: datetime | None
    prompt: str | None = None
    attempts: int = 0
    created_at: datetime | None = None
    submitted_at: datetime | None = None
    submit_url: str | None = field(default=None, repr=False)
    #: ``code`` (a person gives a code) or ``approval`` (a person approves or denies).
    kind: str = "code"
    #: An answered code request: whether an agent took the code already.
    delivered: bool = False

    @property
    def approved(self) -> bool:
        """An approval that a person approved."""
        return self.status == "approved"

    def __repr__(self) -> str:
        link = None
        if self.submit_url is not None:
            parts = urlsplit(self.submit_url)
            link = f"{parts.scheme}://{parts.netloc}/submit/<token>"
        expires = _when(self.expires_at) if self.expires_at else None
        return (
            f"Interaction(id={self.id!r}, kind={self.kind!r}, status={self.status!r}, "
            f"expires_at={expires!r}, submit_url={link!r})"
        )


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant; ``api_key`` is only in the answer that created it."""

    id: str
    name: str
    api_key: Secret


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhook:
    """An endpoint for the tenant's events; ``secret`` (``whsec_...``) only when created."""

    id: str
    url: str
    events: tuple[str, ...]
    enabled: bool = True
    secret: Secret | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook delivery: ``id`` is stable across retries (deduplicate on it).

    ``data`` may hold a ``submit_url``, whose token lets anyone answer: the
    repr names the keys of ``data`` only.
    """

    id: str
    type: str
    timestamp: datetime | None
    data: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        return f"WebhookEvent(id={self.id!r}, type={self.type!r}, data_keys={sorted(self.data)!r})"


def _when(moment: datetime) -> str:
    """For reprs: milliseconds, as the gateway sends them (six digits would look like a code)."""
    return moment.isoformat(timespec="milliseconds")


def parse_time(raw: Any) -> datetime | None:
    """The gateway's ISO 8601 times (``2026-01-02T03:04:05.678Z``) as aware datetimes."""
    if not isinstance(raw, str) or not raw:
        return None
    parsed = datetime.fromisoformat(raw)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def credential_from(body: dict[str, Any]) -> Credential:
    auth = body.get("authenticator")
    return Credential(
        id=body["id"],
        name=body["name"],
        username=body.get("username"),
        inbox=body["inbox"],
        phone_number=body.get("phone_number"),
        has_password=bool(body.get("has_password", False)),
        authenticator=authenticator_from(auth) if isinstance(auth, dict) else None,
        created_at=parse_time(body.get("created_at")),
        updated_at=parse_time(body.get("updated_at")),
    )


def authenticator_from(body: dict[str, Any]) -> Authenticator:
    return Authenticator(
        kind=body["kind"],
        digits=int(body["digits"]),
        period=int(body["period"]),
        algorithm=body["algorithm"],
    )


def interaction_from(body: dict[str, Any]) -> Interaction:
    return Interaction(
        id=body["id"],
        credential_id=body.get("credential_id", ""),
        status=body["status"],
        expires_at=parse_time(body.get("expires_at")),
        prompt=body.get("prompt"),
        attempts=int(body.get("attempts", 0)),
        created_at=parse_time(body.get("created_at")),
        submitted_at=parse_time(body.get("submitted_at")),
        submit_url=body.get("submit_url"),
        kind=body.get("kind", "code"),
        delivered=bool(body.get("delivered", False)),
    )


def code_from(body: dict[str, Any], *, source: str | None = None) -> Code:
    return Code(
        value=body["code"],
        source=body.get("source") or source or "user",
        expires_at=parse_time(body.get("expires_at")),
        received_at=parse_time(body.get("received_at") or body.get("submitted_at")),
        sender=body.get("sender"),
    )


def link_from(body: dict[str, Any]) -> Link:
    return Link(
        url=body["url"],
        kind=body.get("kind"),
        source=body.get("source") or "email",
        received_at=parse_time(body.get("received_at")),
        sender=body.get("sender"),
    )


def webhook_from(body: dict[str, Any]) -> Webhook:
    secret = body.get("secret")
    return Webhook(
        id=body["id"],
        url=body["url"],
        events=tuple(body.get("events", ())),
        enabled=bool(body.get("enabled", True)),
        secret=Secret(secret) if isinstance(secret, str) else None,
    )


def iso_time(when: datetime | float) -> str:
    """A moment (aware datetime or UNIX seconds) as the gateway reads it: UTC, microseconds."""
    ts = when.timestamp() if isinstance(when, datetime) else float(when)
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
