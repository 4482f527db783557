"""Identifiers and API keys: random, prefixed, easy to recognise in a log line."""

from __future__ import annotations

import base64
import re
import secrets
import time

TENANT = "ten"
CREDENTIAL = "cred"
API_KEY = "key"
RECEIVED_CODE = "rcv"
INTERACTION = "int"
WEBHOOK = "whk"
WEBHOOK_ATTEMPT = "wha"
FORWARD = "fwd"
FORWARD_COPY = "fwc"
SMS_DEVICE = "dev"
REPLICA = "rep"
LOGIN = "log"
BACKUP_CODE = "bkc"
CODE_WAIT = "wai"

#: Prefix of tenant API keys (recognisable to people and secret scanners).
TENANT_KEY_PREFIX = "otpg_"
#: Prefix of generated admin API keys.
ADMIN_KEY_PREFIX = "otpgadm_"

_ID_RE = re.compile(r"^[a-z]{3,5}_[a-z2-7]{16}$")


def _b32(n: int) -> str:
    return base64.b32encode(secrets.token_bytes(n)).decode().rstrip("=").lower()


def new_id(kind: str) -> str:
    """``<kind>_`` and 80 random bits in lower-case base32 (16 characters)."""
    return f"{kind}_{_b32(10)}"


def looks_like_id(value: str) -> bool:
    """A cheap syntax check so garbage in a path answers 404 without a query."""
    return bool(_ID_RE.match(value))


def new_api_key(prefix: str = TENANT_KEY_PREFIX) -> str:
    """An API key: the prefix and 256 random bits, URL-safe base64."""
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def new_inbox_local(name: str) -> str:
    """A readable, unguessable inbox local part: a slug of *name* and 40 random bits."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24].strip("-")
    suffix = _b32(5)
    return f"{slug}-{suffix}" if slug else suffix


def now() -> float:
    return time.time()
