"""Authenticator secrets: parsing, validation and code generation (HOTP, TOTP).

Pure functions over an immutable :class:`Authenticator`; no storage, no clock, no I/O.
Input arrives either as an ``otpauth://`` URI (Google's Key URI format, what a QR
code holds) or as separate fields, and both paths end in the same checks.

Every rejection raises :class:`gateway.errors.Invalid` with a message that names
what is wrong and never repeats the secret or the URI (which holds the secret).

Codes are computed here with ``hmac`` (RFC 4226 section 5.3; a TOTP code is the
HOTP code of the time step, RFC 6238 section 4). pyotp, the library the project
first chose, is the cross-check in the tests rather than the engine, because:

* it takes base32 text and decodes it twice per code; from stored key bytes that
  costs 10-45 us per code against 2-6 us here (most for 512-bit SHA512 keys);
* 2.12 refuses secrets under 112 bits, while RFC 4226 (R6) allows 80 and real
  services issue 80-bit (16-character) secrets;
* ``pyotp.TOTP`` refuses periods over 120 seconds; we accept 1..300.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from gateway.errors import Invalid

Kind = Literal["totp", "hotp"]
Algorithm = Literal["SHA1", "SHA256", "SHA512"]

MAX_URI_LENGTH = 4096
MIN_SECRET_BITS = 80
MIN_DIGITS, MAX_DIGITS = 6, 10
MIN_PERIOD, MAX_PERIOD = 1, 300
COUNTER_LIMIT = 2**64  # the moving factor is an 8-byte big-endian integer

_KINDS: dict[str, Kind] = {"totp": "totp", "hotp": "hotp"}
_ALGORITHMS: dict[str, Algorithm] = {"SHA1": "SHA1", "SHA256": "SHA256", "SHA512": "SHA512"}
_DIGESTS: dict[Algorithm, str] = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
_BASE32 = re.compile(r"[A-Z2-7]*")
_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII only: int() would also take "1_0" and "٣"
_PARAMETERS = ("secret", "issuer", "digits", "period", "algorithm", "counter")


@dataclass(frozen=True, slots=True)
class Authenticator:
    """One enrolled authenticator; constructing it validates every field.

    ``label`` is the account part of the URI label (without the issuer prefix).
    ``period`` is kept for HOTP too; ``counter`` is the HOTP moving factor (0 for TOTP).
    """

    kind: Kind
    secret: bytes = field(repr=False)
    digits: int = 6
    period: int = 30
    algorithm: Algorithm = "SHA1"
    counter: int = 0
    issuer: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("totp", "hotp"):
            raise Invalid("kind must be totp or hotp")
        if not isinstance(self.secret, bytes):
            raise Invalid("the secret must be bytes")
        bits = len(self.secret) * 8
        if bits < MIN_SECRET_BITS:
            raise Invalid(f"the secret is {bits} bits; at least {MIN_SECRET_BITS} are required")
        _check_int("digits", self.digits)
        if not MIN_DIGITS <= self.digits <= MAX_DIGITS:
            raise Invalid(f"digits must be between {MIN_DIGITS} and {MAX_DIGITS}")
        _check_int("period", self.period)
        if not MIN_PERIOD <= self.period <= MAX_PERIOD:
            raise Invalid(f"period must be between {MIN_PERIOD} and {MAX_PERIOD} seconds")
        if self.algorithm not in ("SHA1", "SHA256", "SHA512"):
            raise Invalid("algorithm must be SHA1, SHA256 or SHA512")
        _check_int("counter", self.counter)
        if self.counter < 0:
            raise Invalid("counter must not be negative")
        if self.counter >= COUNTER_LIMIT:
            raise Invalid("counter must be below 2**64")
        for name, value in (("issuer", self.issuer), ("label", self.label)):
            if value is not None and not isinstance(value, str):
                raise Invalid(f"{name} must be text")

    def __eq__(self, other: object) -> bool:
        """Compare field by field, the secret in constant time."""
        if not isinstance(other, Authenticator):
            return NotImplemented
        public = (self.kind, self.digits, self.period, self.algorithm, self.counter)
        theirs = (other.kind, other.digits, other.period, other.algorithm, other.counter)
        names = (self.issuer, self.label) == (other.issuer, other.label)
        return hmac.compare_digest(self.secret, other.secret) and public == theirs and names


def _check_int(name: str, value: object) -> None:
    # bool is an int subclass; True must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name} must be an integer, not {type(value).__name__}")


def decode_secret(text: str) -> bytes:
    """Decode a base32 secret leniently: any case, spaces and dashes, padding optional."""
    if not isinstance(text, str):
        raise Invalid("the secret must be text")
    if len(text) > MAX_URI_LENGTH:
        raise Invalid(f"the secret is longer than {MAX_URI_LENGTH} characters")
    compact = "".join(text.split()).replace("-", "").rstrip("=")
    if not compact:
        raise Invalid("the secret is empty")
    # isascii() first: str.upper() maps some non-ASCII letters into A-Z ("ß" -> "SS").
    compact = compact.upper() if compact.isascii() else "!"
    if not _BASE32.fullmatch(compact):
        raise Invalid("the secret is not valid base32 (only letters A-Z and digits 2-7 may appear)")
    if len(compact) % 8 in (1, 3, 6):  # no whole number of bytes has this many characters
        raise Invalid("the secret is not valid base32 (its length is impossible)")
    try:
        return base64.b32decode(compact + "=" * (-len(compact) % 8))
    except binascii.Error:  # unreachable after the checks above; kept so no text escapes
        raise Invalid("the secret is not valid base32") from None


def _parse_int(name: str, text: str) -> int:
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        raise Invalid(f"{name} must be a whole number")
    return int(text)


def _parse_kind(text: str) -> Kind:
    kind = _KINDS.get(text.strip().lower())
    if kind is None:
        raise Invalid("kind must be totp or hotp")
    return kind


def _parse_algorithm(text: str) -> Algorithm:
    algorithm = _ALGORITHMS.get(text.strip().upper().replace("-", ""))
    if algorithm is None:
        raise Invalid("algorithm must be SHA1, SHA256 or SHA512")
    return algorithm


def from_fields(
    *,
    secret: str,
    kind: str,
    digits: int | None = None,
    period: int | None = None,
    algorithm: str | None = None,
    counter: int | None = None,
) -> Authenticator:
    """Build an authenticator from separately entered fields; ``None`` means the default."""
    if not isinstance(kind, str):
        raise Invalid("kind must be totp or hotp")
    if algorithm is not None and not isinstance(algorithm, str):
        raise Invalid("algorithm must be SHA1, SHA256 or SHA512")
    return Authenticator(
        kind=_parse_kind(kind),
        secret=decode_secret(secret),
        digits=6 if digits is None else digits,
        period=30 if period is None else period,
        algorithm="SHA1" if algorithm is None else _parse_algorithm(algorithm),
        counter=0 if counter is None else counter,
    )


def parse_otpauth_uri(uri: str) -> Authenticator:
    """Parse ``otpauth://TYPE/[ISSUER:]ACCOUNT?secret=...`` (Google's Key URI format).

    Lenient where real issuers differ: type, parameter names and the algorithm
    in any case; the label may be percent-encoded (``Issuer%3Aacct``); the
    ``issuer`` parameter wins over the label prefix when both are present; a
    missing HOTP ``counter`` (required by the format) is taken as 0; a TOTP URI's
    ``counter`` and unknown parameters (``image``, ...) are ignored. A parameter
    repeated with the same value is accepted, with different values refused.
    """
    if not isinstance(uri, str):
        raise Invalid("the URI must be text")
    if len(uri) > MAX_URI_LENGTH:
        raise Invalid(f"the URI is longer than {MAX_URI_LENGTH} characters")
    try:
        parts = urlsplit(uri.strip())
    except ValueError:
        raise Invalid("the URI is malformed") from None
    if parts.scheme != "otpauth":
        raise Invalid("the URI scheme must be otpauth")
    kind = _KINDS.get(parts.netloc.lower())
    if kind is None:
        raise Invalid("the URI type must be totp or hotp")

    params: dict[str, str] = {}
    for raw_name, value in parse_qsl(parts.query, keep_blank_values=True):
        name = raw_name.lower()
        if name not in _PARAMETERS:
            continue
        seen = params.setdefault(name, value)
        if not hmac.compare_digest(seen.encode(), value.encode()):
            raise Invalid(f"the {name} parameter appears more than once with different values")
    if "secret" not in params:
        raise Invalid("the URI has no secret parameter")

    label_issuer, label = _split_label(unquote(parts.path.removeprefix("/")))
    issuer = params.get("issuer", "").strip() or label_issuer

    def number(name: str, default: int) -> int:
        return _parse_int(name, params[name]) if name in params else default

    return Authenticator(
        kind=kind,
        secret=decode_secret(params["secret"]),
        digits=number("digits", 6),
        period=number("period", 30),
        algorithm=_parse_algorithm(params["algorithm"]) if "algorithm" in params else "SHA1",
        counter=number("counter", 0) if kind == "hotp" else 0,
        issuer=issuer,
        label=label,
    )


def _split_label(label: str) -> tuple[str | None, str | None]:
    """Split ``Issuer:account`` into its parts; either may be missing."""
    issuer, colon, account = label.partition(":")
    if not colon:
        issuer, account = "", issuer
    return issuer.strip() or None, account.strip() or None


def _code(auth: Authenticator, counter: int) -> str:
    """HOTP (RFC 4226 section 5.3): HMAC the 8-byte counter, dynamic truncation, modulo."""
    if not 0 <= counter < COUNTER_LIMIT:
        raise ValueError("the counter must be in 0 .. 2**64 - 1")
    mac = hmac.digest(auth.secret, counter.to_bytes(8, "big"), _DIGESTS[auth.algorithm])
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**auth.digits).zfill(auth.digits)


def hotp_code(auth: Authenticator, counter: int) -> str:
    """Return the HOTP code (RFC 4226) of a HOTP authenticator at ``counter``."""
    if auth.kind != "hotp":
        raise ValueError("hotp_code needs a hotp authenticator")
    return _code(auth, counter)


def totp_code(auth: Authenticator, at: float) -> str:
    """Return the TOTP code (RFC 6238, T0 = 0) of a TOTP authenticator at unix time ``at``."""
    return totp_window(auth, at)[0]


def totp_window(auth: Authenticator, at: float) -> tuple[str, float]:
    """Return the TOTP code at unix time ``at`` and the unix time at which it stops being valid.

    The step containing ``at`` is ``[step * period, (step + 1) * period)``: a time
    exactly on a boundary belongs to the step that starts there.
    """
    if auth.kind != "totp":
        raise ValueError("totp_code and totp_window need a totp authenticator")
    if not math.isfinite(at) or at < 0:
        raise ValueError("the time must be a finite unix time at or after the epoch")
    step = int(at // auth.period)
    return _code(auth, step), float((step + 1) * auth.period)
