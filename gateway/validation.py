"""The syntax of phone numbers, domain names, mail addresses and origins, written once.

Settings, services and the protocol adapters all ask these questions; each
caller words its own error (the API's messages are part of its contract), so
the rules here only answer yes or no.  They are syntax only: whether a domain
may be reached is :mod:`gateway.netguard`'s business.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

#: ``+``, a country code that never starts with 0, and 7 to 15 ASCII digits in
#: all (ITU-T E.164), with no spaces or punctuation.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
#: A host name label (RFC 1123): letters, digits and hyphens, not at either end.
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
#: The same, with underscores as DNS itself allows them (``_dmarc``, some CDNs).
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
#: A dot-atom local part (RFC 5322 3.4.1): no quoted strings, no comments.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")

#: Longest domain name and local part (RFC 1035, RFC 5321 4.5.3.1).
MAX_DOMAIN = 253
MAX_LOCAL_PART = 64
#: Longest address that fits a ``MAIL FROM`` or ``RCPT TO`` path (RFC 5321).
MAX_ADDRESS = 254


#: Characters that turn text around or hide in it (Unicode bidirectional
#: controls), which would make a name read differently from what it is.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_plain_text(value: str) -> bool:
    """Whether *value* is one line a person can read: no control characters (NUL,
    newlines and tabs included), no bidirectional overrides."""
    return not any(ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def is_e164(number: str) -> bool:
    """Whether *number* is a phone number in E.164 form, such as ``+14155550100``."""
    return _E164.fullmatch(number) is not None


def is_domain_name(name: str, *, underscores: bool = False) -> bool:
    """Whether *name* is lower-case ASCII labels joined by dots, with no final dot.

    Each label is 1 to 63 letters, digits and inner hyphens, the whole at most
    253 characters.  A single label (``localhost``) is a domain name too.
    With *underscores*, labels may hold them as DNS names may.
    """
    label = _DNS_LABEL if underscores else _LABEL
    return len(name) <= MAX_DOMAIN and all(label.fullmatch(lb) for lb in name.split("."))


def is_public_domain_name(name: str) -> bool:
    """Whether *name* is a domain name under an alphabetic top-level domain (``example.com``)."""
    if not is_domain_name(name):
        return False
    _, dot, top = name.rpartition(".")
    return bool(dot) and len(top) >= 2 and top.isalpha()


def is_local_part(local: str) -> bool:
    """Whether *local* is a dot-atom mailbox name of at most 64 characters."""
    return len(local) <= MAX_LOCAL_PART and _LOCAL.fullmatch(local) is not None


def split_mail_address(address: str) -> tuple[str, str] | None:
    """The local part and the domain of ``local@domain``, or None when it is not one.

    The local part must pass :func:`is_local_part` and the whole address fit in
    254 characters; the domain is returned as written (perhaps empty), for the
    caller to check against its own rule.
    """
    local, at, domain = address.rpartition("@")
    if not at or len(address) > MAX_ADDRESS or not is_local_part(local):
        return None
    return local, domain


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL; None for ``null``, a URL with a user
    (``http://evil@host``) and the like."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def origin_header(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an ``Origin`` header, which is exactly ``scheme://host[:port]``
    (RFC 6454): None with a user, a path (even ``/``), a query or a fragment."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.path or parts.query or parts.fragment or value != value.strip() or "?" in value:
        return None
    return origin_of(value)
