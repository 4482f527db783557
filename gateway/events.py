"""The webhook events: the catalogue of their types, and the payload of each.

Every event a tenant can subscribe to is declared here once, with what it
means; the subscription check, the queue and the OpenAPI document take the
list from :data:`CATALOGUE`. Each payload is built by the function named for
its event, so what a receiver gets is written in one place:

- ``interaction.code_required``: :func:`code_required`;
- ``interaction.code_submitted``: :func:`code_submitted`;
- ``interaction.expired``: :func:`interaction_expired`;
- ``code.received``: :func:`code_received`;
- ``link.received``: :func:`link_received`;
- ``code.unsolicited``: :func:`code_unsolicited`;
- ``backup_codes.low``: :func:`backup_codes_low`;
- ``interaction.decided``: :func:`interaction_decided`.

No payload holds a code, a secret or a message body. The one link a receiver
gets, ``submit_url`` of ``interaction.code_required``, is queued as ``null``
and put in by the sender at each attempt (the token is never stored in
clear); that event is the one not ``metadata_only``.

The delivered body is ``{"type", "timestamp", "data"}`` as compact,
key-sorted JSON (:func:`event_body`): the bytes stored, signed and sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import Invalid
from .timestamps import iso


@dataclass(frozen=True, slots=True)
class EventType:
    """One kind of webhook event a tenant may subscribe to."""

    name: str
    description: str
    #: False where the sender adds a secret link to the queued metadata.
    metadata_only: bool = True


CODE_REQUIRED = EventType(
    "interaction.code_required",
    "An agent asks a person for a code: the interaction, its credential, the prompt, "
    "the deadline and the submit_url where the person answers without an API key.",
    metadata_only=False,
)
CODE_SUBMITTED = EventType(
    "interaction.code_submitted",
    "A person answered an interaction: which one, for which credential, when; never the code.",
)
INTERACTION_EXPIRED = EventType(
    "interaction.expired",
    "An interaction ran out of time, answered or not: which one, its credential, its deadline.",
)
CODE_RECEIVED = EventType(
    "code.received",
    "A code arrived by mail or text and waits for its agent: which credential, from which "
    "channel, when; never the code, the sender's message or its body.",
)

LINK_RECEIVED = EventType(
    "link.received",
    "A sign-in or confirmation link arrived and waits for its agent: which credential, "
    "from which channel, what kind of link, when; never the link.",
)
CODE_UNSOLICITED = EventType(
    "code.unsolicited",
    "A code or link arrived while no login was open and no agent waited on its credential: "
    "someone else may be signing in. Which credential, the channel, the sender's domain, when.",
)
BACKUP_CODES_LOW = EventType(
    "backup_codes.low",
    "A credential has only two backup codes left: which credential, how many remain.",
)
INTERACTION_DECIDED = EventType(
    "interaction.decided",
    "A person approved or denied an approval request: which one, its credential, the "
    "decision, when; never the number to match.",
)

#: Every event type, in the order the API lists them.
CATALOGUE: tuple[EventType, ...] = (
    CODE_REQUIRED,
    CODE_SUBMITTED,
    INTERACTION_EXPIRED,
    CODE_RECEIVED,
    LINK_RECEIVED,
    CODE_UNSOLICITED,
    BACKUP_CODES_LOW,
    INTERACTION_DECIDED,
)
NAMES: tuple[str, ...] = tuple(t.name for t in CATALOGUE)


@dataclass(slots=True)  # not frozen, like the rows of store.inbound: one per code received
class Event:
    """One event to queue: its type's name and its payload (the body's ``data``)."""

    type: str
    data: dict[str, Any]


def code_required(
    *,
    interaction_id: str,
    credential_id: str,
    credential_name: str,
    prompt: str | None,
    expires_at: float,
    kind: str = "code",
) -> Event:
    """``interaction.code_required``, queued with ``submit_url`` null (see the module).

    *kind* is ``code`` or ``approval``; an approval's number to match is never in it.
    """
    return Event(
        CODE_REQUIRED.name,
        {
            "interaction_id": interaction_id,
            "kind": kind,
            "credential_id": credential_id,
            "credential_name": credential_name,
            "prompt": prompt,
            "expires_at": iso(expires_at),
            "submit_url": None,
        },
    )


def code_submitted(*, interaction_id: str, credential_id: str, submitted_at: float) -> Event:
    """``interaction.code_submitted``: which interaction was answered, and when."""
    return Event(
        CODE_SUBMITTED.name,
        {
            "interaction_id": interaction_id,
            "credential_id": credential_id,
            "submitted_at": iso(submitted_at),
        },
    )


def interaction_expired(
    *, interaction_id: str, credential_id: str, expires_at: float, answered: bool
) -> Event:
    """``interaction.expired``: which interaction, its deadline, and whether it was answered."""
    return Event(
        INTERACTION_EXPIRED.name,
        {
            "interaction_id": interaction_id,
            "credential_id": credential_id,
            "expires_at": iso(expires_at),
            "answered": answered,
        },
    )


def code_received(*, credential_id: str, source: str, received_at: float) -> Event:
    """``code.received``: which credential, from which channel, when; never the code."""
    return Event(
        CODE_RECEIVED.name,
        {"credential_id": credential_id, "source": source, "received_at": iso(received_at)},
    )


def link_received(*, credential_id: str, source: str, kind: str, received_at: float) -> Event:
    """``link.received``: which credential, from which channel, what kind; never the link."""
    return Event(
        LINK_RECEIVED.name,
        {
            "credential_id": credential_id,
            "source": source,
            "kind": kind,
            "received_at": iso(received_at),
        },
    )


def code_unsolicited(
    *, credential_id: str, channel: str, sender_domain: str | None, received_at: float
) -> Event:
    """``code.unsolicited``: metadata of a code or link nobody was signing in for."""
    return Event(
        CODE_UNSOLICITED.name,
        {
            "credential_id": credential_id,
            "channel": channel,
            "sender_domain": sender_domain or None,
            "received_at": iso(received_at),
        },
    )


def backup_codes_low(*, credential_id: str, remaining: int) -> Event:
    """``backup_codes.low``: which credential, how many codes remain."""
    return Event(BACKUP_CODES_LOW.name, {"credential_id": credential_id, "remaining": remaining})


def interaction_decided(
    *, interaction_id: str, credential_id: str, decision: str, decided_at: float
) -> Event:
    """``interaction.decided``: an approval's decision; never the number to match."""
    return Event(
        INTERACTION_DECIDED.name,
        {
            "interaction_id": interaction_id,
            "credential_id": credential_id,
            "decision": decision,
            "decided_at": iso(decided_at),
        },
    )


def event_body(event: str, data: dict[str, Any], now: float) -> str:
    """The delivered JSON, byte for byte: ``{"type", "timestamp", "data"}``."""
    return encode_body({"type": event, "timestamp": iso(now), "data": data})


def encode_body(event: dict[str, Any]) -> str:
    """An event as the compact, key-sorted JSON that is stored, signed and sent."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True)


def check_subscription(names: Sequence[str]) -> list[str]:
    """The event names an endpoint subscribes to, each once, in order; ``Invalid`` if unknown."""
    chosen: list[str] = []
    for name in names:
        if name not in NAMES:
            raise Invalid(
                f"unknown event {name!r}; the events are: {', '.join(NAMES)}",
                code="unknown_event",
            )
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise Invalid("'events' needs at least one event")
    return chosen
