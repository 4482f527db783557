"""Enrolment pictures and exports: QR images and authenticator apps' exports, read.

A person enrols an account by showing otpgate what they would show an
authenticator app: a screenshot or photo of the enrolment QR code (an
``otpauth://`` URI, read by :func:`authenticator_in_image`), or the export of
an app that already holds the accounts (Google Authenticator's
``otpauth-migration://offline?data=...``, read by :func:`parse_migration_uri`
or, from a photo of its QR code, :func:`accounts_in_image`).

Pure functions: no storage, no clock, no I/O beyond decoding the bytes they
are given. Decoding a picture is CPU work (tens to hundreds of milliseconds);
callers run it off the event loop. Everything here is hostile input, so each
size is bounded before work is spent on it, and every failure raises
:class:`gateway.errors.Invalid` (422) or :class:`~gateway.errors.TooLarge`
(413) with a message that never repeats a secret, a URI or a QR code's text.

Pictures are opened with Pillow (PNG and JPEG only) and read with zxing-cpp
(both install as wheels, no system library). The export's payload is a
protocol buffer; its layout, as Google Authenticator writes it::

    MigrationPayload { repeated OtpParameters otp_parameters = 1; int32 version = 2;
                       int32 batch_size = 3; int32 batch_index = 4; int32 batch_id = 5 }
    OtpParameters    { bytes secret = 1; string name = 2; string issuer = 3;
                       Algorithm algorithm = 4; DigitCount digits = 5; OtpType type = 6;
                       int64 counter = 7 }
    Algorithm  { UNSPECIFIED = 0; SHA1 = 1; SHA256 = 2; SHA512 = 3; MD5 = 4 }
    DigitCount { UNSPECIFIED = 0; SIX = 1; EIGHT = 2 }
    OtpType    { UNSPECIFIED = 0; HOTP = 1; TOTP = 2 }

is read by the small wire-format reader below (varints and length-delimited
fields are all it uses); a message that does not follow the wire format is
refused, never half read.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import zxingcpp
from PIL import Image

from . import otp
from .errors import Invalid, TooLarge

#: The largest picture accepted, decoded from base64: a phone's screenshot or photo.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: Its length in base64 (whitespace and a ``data:`` URL prefix aside).
MAX_IMAGE_BASE64 = 4 * math.ceil(MAX_IMAGE_BYTES / 3)
#: The most pixels a picture may declare; checked from its header, before it is decoded
#: (a few kilobytes of PNG can declare gigapixels). A 48-megapixel photo fits.
MAX_PIXELS = 50_000_000
#: Past this, a JPEG is decoded at half its size or less (its QR code stays large enough).
_DECODE_PIXELS = 16_000_000
#: An export's URI; one QR code holds under 3 KB, an export pasted as text may hold several.
MAX_MIGRATION_URI_LENGTH = 64 * 1024
#: Accounts created by one import.
MAX_ACCOUNTS = 100
#: An account's secret (real ones are 10 to 64 bytes).
MAX_SECRET_BYTES = 1024
#: A credential's name, and the issuer and account name kept with its authenticator.
MAX_NAME = 200

_IMAGE_ERRORS = (
    OSError,  # Pillow's UnidentifiedImageError, and truncated files
    ValueError,
    SyntaxError,  # Pillow's PNG reader raises it for broken chunks
    EOFError,
    struct.error,
    zlib.error,
)
_URLSAFE = str.maketrans("-_", "+/")
_QR_CODES = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


@dataclass(frozen=True, slots=True)
class ImportedAccount:
    """One account of an export, validated: the credential to create for it."""

    #: The credential's name: "issuer: account name", or whichever of the two it has.
    name: str
    authenticator: otp.Authenticator

    def __post_init__(self) -> None:
        if not 0 < len(self.name) <= MAX_NAME or not self.name.isprintable():
            raise Invalid(
                f"an imported account's name must be 1 to {MAX_NAME} printable characters"
            )


# Base64 ------------------------------------------------------------------------------


def _base64(text: str) -> bytes | None:
    """Standard or URL-safe base64, whitespace and padding optional; None if it is not."""
    compact = "".join(text.split()).translate(_URLSAFE).rstrip("=")
    if len(compact) % 4 == 1:
        return None
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):  # ValueError: characters outside ASCII
        return None


def image_from_base64(text: str, field: str = "qr_image") -> bytes:
    """The picture sent as base64 in *field* (a ``data:image/...;base64,`` prefix is allowed).

    413 past :data:`MAX_IMAGE_BYTES`, counted before decoding; 422 if it is not base64.
    """
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise Invalid(f"'{field}' must be base64, or a data: URL with ;base64")
    if len(text) > MAX_IMAGE_BASE64 and len("".join(text.split())) > MAX_IMAGE_BASE64:
        raise _too_large()
    image = _base64(text)
    if image is None:
        raise Invalid(f"'{field}' is not base64")
    if len(image) > MAX_IMAGE_BYTES:
        raise _too_large()
    return image


def _too_large() -> TooLarge:
    return TooLarge(f"the image must be at most {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")


# Pictures ----------------------------------------------------------------------------


def qr_texts(image: bytes) -> list[str]:
    """The text of each QR code in a PNG or JPEG picture, each once."""
    if len(image) > MAX_IMAGE_BYTES:
        raise _too_large()
    picture = _grayscale(_opened(image))
    found = zxingcpp.read_barcodes(picture, formats=_QR_CODES, text_mode=zxingcpp.TextMode.Plain)
    return list(dict.fromkeys(code.text for code in found))


def _opened(image: bytes) -> Image.Image:
    """The picture with only its header read, refused if it declares too many pixels."""
    try:
        picture = Image.open(io.BytesIO(image), formats=("PNG", "JPEG"))
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours
        raise _too_many_pixels() from None
    except _IMAGE_ERRORS:  # UnidentifiedImageError among them
        raise Invalid("the image is not a PNG or JPEG picture") from None
    if picture.width * picture.height > MAX_PIXELS:
        raise _too_many_pixels()
    return picture


def _too_many_pixels() -> TooLarge:
    return TooLarge(f"the image must have at most {MAX_PIXELS // 1_000_000} megapixels")


def _grayscale(picture: Image.Image) -> Image.Image:
    """Decode to 8-bit gray, transparent areas as white (a QR code drawn on nothing)."""
    try:
        if picture.format in ("JPEG", "MPO"):  # MPO: a camera's JPEG with a preview inside
            shrink = 2 if picture.width * picture.height > _DECODE_PIXELS else 1
            # Luminance straight from the JPEG, at 1/2, 1/4 or 1/8 scale if that is enough.
            picture.draft("L", (picture.width // shrink, picture.height // shrink))
        picture.load()
        if picture.has_transparency_data:
            rgba = picture.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            white.alpha_composite(rgba)
            picture = white
        return picture.convert("L")
    except _IMAGE_ERRORS:
        raise Invalid("the image could not be decoded (damaged or truncated)") from None


def _scheme(text: str) -> str:
    try:
        return urlsplit(text.strip()).scheme  # lower-cased
    except ValueError:
        return ""


def _only_qr(image: bytes, scheme: str, what: str) -> list[str]:
    """The distinct texts of the picture's QR codes that hold a *scheme* URI; 422 if none."""
    texts = qr_texts(image)
    if not texts:
        raise Invalid("no QR code was found in the image")
    wanted = [t for t in texts if _scheme(t) == scheme]
    if wanted:
        return wanted
    schemes = {_scheme(t) for t in texts}
    if "otpauth-migration" in schemes:
        raise Invalid(
            "the QR code holds an authenticator app's export (otpauth-migration://); "
            "import it with POST /v1/credentials/import"
        )
    if "otpauth" in schemes:
        raise Invalid(
            "the QR code holds one account's otpauth:// URI, not an export; "
            "store it with PUT /v1/credentials/{id}/authenticator"
        )
    raise Invalid(f"no QR code in the image holds {what}")


def authenticator_in_image(image: bytes) -> otp.Authenticator:
    """The authenticator of the enrolment QR code (``otpauth://``) in a screenshot or photo."""
    uris = _only_qr(image, "otpauth", "an otpauth:// URI")
    if len(uris) > 1:
        raise Invalid("the image holds several otpauth:// QR codes; crop it to the one to enrol")
    return otp.parse_otpauth_uri(uris[0])


def accounts_in_image(image: bytes) -> list[ImportedAccount]:
    """The accounts of the export QR codes (``otpauth-migration://``) in a picture."""
    uris = _only_qr(image, "otpauth-migration", "an authenticator app's export")
    return _numbered([_payload(uri) for uri in uris])


# The export ---------------------------------------------------------------------------


def parse_migration_uri(uri: str) -> list[ImportedAccount]:
    """The accounts of ``otpauth-migration://offline?data=<base64 protobuf>``, all valid.

    422 if the URI or its payload is malformed, if it holds no account or more
    than :data:`MAX_ACCOUNTS`, or if any account cannot be used (naming the
    account by its position, from 1): either every account is returned or none.
    """
    return _numbered([_payload(uri)])


def _numbered(payloads: list[list[_Parameters]]) -> list[ImportedAccount]:
    params = [p for payload in payloads for p in payload]
    if not params:
        raise Invalid("the export holds no account")
    if len(params) > MAX_ACCOUNTS:
        raise Invalid(f"the export holds {len(params)} accounts; at most {MAX_ACCOUNTS} at once")
    return [_account(position, p) for position, p in enumerate(params, start=1)]


def _payload(uri: str) -> list[_Parameters]:
    """The OtpParameters of one export URI (each still to be checked)."""
    if len(uri) > MAX_MIGRATION_URI_LENGTH:
        raise Invalid(f"the export's URI is longer than {MAX_MIGRATION_URI_LENGTH} characters")
    try:
        parts = urlsplit(uri.strip())
    except ValueError:
        raise Invalid("the export's URI is malformed") from None
    if parts.scheme != "otpauth-migration" or parts.netloc.lower() != "offline":
        raise Invalid("an export's URI must start with otpauth-migration://offline?data=")
    # Split by hand: parse_qsl would read the '+' of unencoded base64 as a space.
    values = {
        unquote(value)
        for name, _, value in (pair.partition("=") for pair in parts.query.split("&"))
        if name == "data"
    }
    if len(values) != 1:
        raise Invalid("the export's URI must have one data parameter")
    data = _base64(values.pop())
    if data is None:
        raise Invalid("the export's data parameter is not base64")
    try:
        return _migration_payload(data)
    except _Malformed:
        raise Invalid("the export's data is not a valid migration payload") from None


# The protocol buffer wire format: just enough to read the layout above.

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class _Malformed(Exception):
    """The bytes do not follow the protocol buffer wire format (or the layout)."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at *pos* (at most 10 bytes, below 2**64) and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Malformed
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    if value >> 64:
        raise _Malformed
    return value, pos


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """Each field of a message as (number, wire type, int or bytes)."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if not 0 < number < 2**29:
            raise _Malformed
        value: Any
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if pos + size > len(data):
                raise _Malformed
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise _Malformed
            value, pos = data[pos : pos + size], pos + size
        else:  # groups (3, 4) are not in this layout; 6 and 7 do not exist
            raise _Malformed
        yield number, wire, value


def _signed(value: int) -> int:
    """An int32/int64/enum varint as the signed number it encodes (two's complement)."""
    return value - (1 << 64) if value >> 63 else value


@dataclass(slots=True)
class _Parameters:
    """One OtpParameters message, as found (scalars: the last occurrence wins)."""

    secret: bytes = b""
    name: bytes = b""
    issuer: bytes = b""
    algorithm: int = 0
    digits: int = 0
    type: int = 0
    counter: int = 0
    malformed: bool = False


_BYTES_FIELDS = {1: "secret", 2: "name", 3: "issuer"}
_VARINT_FIELDS = {4: "algorithm", 5: "digits", 6: "type", 7: "counter"}


def _migration_payload(data: bytes) -> list[_Parameters]:
    accounts = []
    for number, wire, value in _fields(data):
        if number == 1:
            if wire != _LEN:
                raise _Malformed
            accounts.append(_otp_parameters(value))
        elif number in (2, 3, 4, 5) and wire != _VARINT:
            raise _Malformed
        if len(accounts) > MAX_ACCOUNTS:  # no need to read the rest
            raise Invalid(f"the export holds more than {MAX_ACCOUNTS} accounts")
    return accounts


def _otp_parameters(data: bytes) -> _Parameters:
    """One account; a malformed one is marked, to be refused by its position."""
    params = _Parameters()
    try:
        for number, wire, value in _fields(data):
            if number in _BYTES_FIELDS:
                if wire != _LEN:
                    raise _Malformed
                setattr(params, _BYTES_FIELDS[number], value)
            elif number in _VARINT_FIELDS:
                if wire != _VARINT:
                    raise _Malformed
                setattr(params, _VARINT_FIELDS[number], _signed(value))
    except _Malformed:
        return _Parameters(malformed=True)
    return params


# From OtpParameters to an account ------------------------------------------------------

_ALGORITHMS: dict[int, otp.Algorithm] = {0: "SHA1", 1: "SHA1", 2: "SHA256", 3: "SHA512"}
_MD5 = 4
_DIGITS = {0: 6, 1: 6, 2: 8}
_KINDS: dict[int, otp.Kind] = {1: "hotp", 2: "totp"}


def _account(position: int, params: _Parameters) -> ImportedAccount:
    where = f"account {position} of the export"
    try:
        return _checked(position, params)
    except Invalid as exc:
        raise Invalid(f"{where}: {exc.message}") from None


def _checked(position: int, params: _Parameters) -> ImportedAccount:
    if params.malformed:
        raise Invalid("it is not a valid OtpParameters message")
    if params.algorithm == _MD5:
        raise Invalid("it uses MD5; the authenticator supports SHA1, SHA256 and SHA512 only")
    algorithm = _ALGORITHMS.get(params.algorithm)
    if algorithm is None:
        raise Invalid(f"its algorithm ({params.algorithm}) is unknown")
    digits = _DIGITS.get(params.digits)
    if digits is None:
        raise Invalid(f"its digit count ({params.digits}) is unknown")
    kind = _KINDS.get(params.type)
    if kind is None:
        raise Invalid(f"its type ({params.type}) is neither HOTP nor TOTP")
    if len(params.secret) > MAX_SECRET_BYTES:
        raise Invalid(f"its secret is longer than {MAX_SECRET_BYTES} bytes")
    if kind == "hotp" and params.counter < 0:
        raise Invalid("its counter is negative")
    issuer, account = _names(_text(params.issuer, "issuer"), _text(params.name, "name"))
    auth = otp.Authenticator(
        kind=kind,
        secret=params.secret,
        digits=digits,
        period=30,  # the format has no period; the apps that write it use 30 s
        algorithm=algorithm,
        counter=params.counter if kind == "hotp" else 0,
        issuer=issuer,
        label=account,
    )
    name = ": ".join(n for n in (issuer, account) if n) or f"Imported account {position}"
    return ImportedAccount(_shortened(name), auth)


def _text(raw: bytes, what: str) -> str:
    """A string field: UTF-8, control characters dropped, runs of spaces made one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"its {what} is not UTF-8") from None
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _names(issuer: str, name: str) -> tuple[str | None, str | None]:
    """(issuer, account name): the apps keep the label "Issuer:account" as the name."""
    prefix, colon, rest = name.partition(":")
    if colon and rest.strip() and (not issuer or prefix.strip().casefold() == issuer.casefold()):
        issuer, name = issuer or prefix.strip(), rest.strip()
    return _shortened(issuer) or None, _shortened(name) or None


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1].rstrip() + "…"
