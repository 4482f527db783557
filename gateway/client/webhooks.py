"""Verify the gateway's webhook deliveries on your side (Standard Webhooks).

    from gateway.client import verify_webhook
    event = verify_webhook(request_body, request_headers, secret)   # or a list of secrets
    if event.type == "interaction.code_required":
        send_to_the_person(event.data["submit_url"])

It wraps the ``standardwebhooks`` package (the specification's reference
implementation), imported only when called so the rest of the SDK does not
need it: ``pip install standardwebhooks``.  Verify the raw body exactly as it
came, before any JSON parsing; deduplicate on ``event.id`` (stable across the
gateway's retries).  During the 24 hours after a secret rotation pass both
secrets (the gateway signs with both).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import WebhookVerificationError
from .models import Secret, WebhookEvent, parse_time


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | Secret | Sequence[str | Secret],
) -> WebhookEvent:
    """The delivery's event, once its signature and timestamp check out with a secret.

    Raises ``WebhookVerificationError`` for a bad or missing signature, a
    timestamp more than five minutes off, or a body that is not an event;
    ``ImportError`` (saying what to install) without ``standardwebhooks``.
    """
    try:
        from standardwebhooks.webhooks import Webhook
        from standardwebhooks.webhooks import (
            WebhookVerificationError as _LibraryError,
        )
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "verifying webhooks needs the standardwebhooks package: pip install standardwebhooks"
        ) from exc
    secrets = [secret] if isinstance(secret, str | Secret) else list(secret)
    if not secrets:
        raise ValueError("give at least one webhook secret")
    plain = {k.lower(): v for k, v in headers.items()}
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    for one in secrets:
        raw = one.reveal() if isinstance(one, Secret) else one
        try:
            Webhook(raw).verify(text, plain, json_parse=False)
        except _LibraryError as exc:
            if "signature" in str(exc).lower() and len(secrets) > 1:
                continue  # perhaps the other secret signed it
            raise WebhookVerificationError(f"the webhook did not verify: {exc}") from None
        except (ValueError, TypeError):  # a malformed signature header or secret
            raise WebhookVerificationError(
                "the webhook's signature header (or the secret) is malformed"
            ) from None
        return _event(plain["webhook-id"], text)
    raise WebhookVerificationError("the webhook did not verify: no matching signature")


def _event(webhook_id: str, text: str) -> WebhookEvent:
    try:
        doc: Any = json.loads(text)
    except ValueError:
        raise WebhookVerificationError("the webhook's body is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise WebhookVerificationError("the webhook's body is not an event")
    data = doc.get("data")
    return WebhookEvent(
        id=webhook_id,
        type=doc["type"],
        timestamp=parse_time(doc.get("timestamp")),
        data=data if isinstance(data, dict) else {},
    )
