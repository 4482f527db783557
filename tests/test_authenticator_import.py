"""Authenticators from pictures of QR codes and from authenticator apps' exports.

The exports are built with the ``protobuf`` package from a descriptor made at
run time after the published layout (an encoder independent of the decoder
under test), or byte by byte where the bytes themselves are the point; the
pictures are drawn with segno and Pillow as phone screenshots and photos; the
codes handed out for what was imported are checked against pyotp.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import io
import logging
import random
import struct
import threading
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pyotp
import pytest
import segno
import zxingcpp
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from PIL import Image, ImageDraw

from gateway import enrolment
from gateway.app import MAX_BODY, Gateway
from gateway.errors import Invalid
from gateway.logs import JsonFormatter, TextFormatter
from gateway.store import credentials as credential_rows

from .helpers import Client, assert_error

# Secrets as base32, 80 to 512 bits, as real services issue them.
S80 = "JBSWY3DPEHPK3PXP"
S160 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
S256 = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
S512 = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPIYTEMZUGU3DOOBZGAYTEMZUGU3DOOBZ" + "GA" * 8
TOTP_URI = f"otpauth://totp/ACME:bot%40example.com?secret={S160}&issuer=ACME"


class RefTOTP(pyotp.TOTP):
    """pyotp as the reference, allowed the 80-bit secrets real services issue."""

    min_secret_length_bits = 80


class RefHOTP(pyotp.HOTP):
    min_secret_length_bits = 80


DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


# The export, encoded by protobuf ----------------------------------------------------------


@functools.cache
def migration_payload_class() -> Any:
    """MigrationPayload as Google Authenticator lays it out, built from a descriptor."""
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="otpgate_test_migration.proto", package="otpgate_test", syntax="proto3"
    )
    payload = file.message_type.add(name="MigrationPayload")
    for enum_name, names in (
        ("Algorithm", ["UNSPECIFIED", "SHA1", "SHA256", "SHA512", "MD5"]),
        ("DigitCount", ["UNSPECIFIED", "SIX", "EIGHT"]),
        ("OtpType", ["UNSPECIFIED", "HOTP", "TOTP"]),
    ):
        enum = payload.enum_type.add(name=enum_name)
        prefix = {"Algorithm": "ALGORITHM", "DigitCount": "DIGIT_COUNT", "OtpType": "OTP_TYPE"}
        for number, name in enumerate(names):
            enum.value.add(name=f"{prefix[enum_name]}_{name}", number=number)
    params = payload.nested_type.add(name="OtpParameters")
    scope = ".otpgate_test.MigrationPayload"
    for number, name, kind, type_name in (
        (1, "secret", F.TYPE_BYTES, None),
        (2, "name", F.TYPE_STRING, None),
        (3, "issuer", F.TYPE_STRING, None),
        (4, "algorithm", F.TYPE_ENUM, f"{scope}.Algorithm"),
        (5, "digits", F.TYPE_ENUM, f"{scope}.DigitCount"),
        (6, "type", F.TYPE_ENUM, f"{scope}.OtpType"),
        (7, "counter", F.TYPE_INT64, None),
    ):
        field = params.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
        if type_name:
            field.type_name = type_name
    payload.field.add(
        name="otp_parameters",
        number=1,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=f"{scope}.OtpParameters",
    )
    for number, name in enumerate(("version", "batch_size", "batch_index", "batch_id"), start=2):
        payload.field.add(name=name, number=number, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("otpgate_test.MigrationPayload")
    )


def account(
    secret: str = S160,
    name: str = "alice@example.com",
    issuer: str = "Example",
    algorithm: int = 1,
    digits: int = 1,
    type: int = 2,
    counter: int = 0,
) -> dict[str, Any]:
    """One OtpParameters (enums by number: SHA1=1, SIX=1, TOTP=2)."""
    return {
        "secret": base64.b32decode(secret),
        "name": name,
        "issuer": issuer,
        "algorithm": algorithm,
        "digits": digits,
        "type": type,
        "counter": counter,
    }


def export_bytes(*accounts: dict[str, Any], batch_size: int = 1, batch_index: int = 0) -> bytes:
    message = migration_payload_class()(
        version=1, batch_size=batch_size, batch_index=batch_index, batch_id=-1_234_567
    )
    for fields in accounts:
        message.otp_parameters.add(**fields)
    return bytes(message.SerializeToString())


def export_uri(data: bytes) -> str:
    """As Google Authenticator writes it: base64, percent-encoded."""
    return "otpauth-migration://offline?data=" + quote(base64.b64encode(data).decode(), safe="")


def secret_of(imported: enrolment.ImportedAccount) -> str:
    return base64.b32encode(imported.authenticator.secret).decode().rstrip("=")


# Bytes assembled by hand, after the wire format's rules ---------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_delimited(number: int, data: bytes) -> bytes:
    return tag(number, 2) + varint(len(data)) + data


def enum_field(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value & (2**64 - 1))  # negatives: ten bytes, as int64


# Pictures -------------------------------------------------------------------------------


def qr_picture(text: str, scale: int = 5) -> Image.Image:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=scale, border=4)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def phone_screenshot(
    qr_text: str | None, *, seed: int, scale: int = 5, noise: float = 0.08
) -> Image.Image:
    """An enrolment page as a phone shows it: status bar, headings, prose, the QR code, noise."""
    rnd = random.Random(seed)
    width, height = 1170, 2532
    shot = Image.new("RGB", (width, height), (242, 242, 247))
    draw = ImageDraw.Draw(shot)
    draw.rectangle((0, 0, width, 130), fill=(28, 28, 30))
    draw.text((60, 45), "9:41", fill="white", font_size=44)
    draw.text((width - 220, 45), "5G  87%", fill="white", font_size=40)
    draw.text((60, 190), "Two-factor authentication", fill=(10, 10, 10), font_size=60)
    words = [
        "scan",
        "this",
        "code",
        "with",
        "your",
        "authenticator",
        "app",
        "then",
        "enter",
        "the",
        "code",
        "it",
        "shows",
    ]
    for line in range(10):
        text = " ".join(rnd.choice(words) for _ in range(8))
        draw.text((60, 300 + 46 * line), text, fill=(60, 60, 67), font_size=34)
    if qr_text is not None:
        qr = qr_picture(qr_text, scale)
        shot.paste(qr, ((width - qr.width) // 2, 820))
    draw.text((60, 2000), "Can't scan it? Enter the setup key instead.", fill=(0, 122, 255))
    draw.rounded_rectangle((60, 2300, width - 60, 2420), radius=30, fill=(0, 122, 255))
    draw.text((width // 2 - 80, 2335), "Continue", fill="white", font_size=44)
    grain = Image.effect_noise((width, height), 40).convert("RGB")
    return Image.blend(shot, grain, noise)


def png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def photo_jpeg(picture: Image.Image, *, angle: float = 6.0, quality: int = 70) -> bytes:
    """The screen photographed: smaller, slightly turned, on a dark desk, lossy."""
    small = picture.resize((picture.width * 3 // 4, picture.height * 3 // 4))
    turned = small.rotate(
        angle, expand=True, fillcolor=(35, 30, 28), resample=Image.Resampling.BICUBIC
    )
    out = io.BytesIO()
    turned.save(out, "JPEG", quality=quality)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# The export's payload: read against the layout ------------------------------------------


def test_an_export_encoded_by_protobuf_is_read_account_by_account() -> None:
    """Every account of a protobuf-encoded export comes back with its parameters and names."""
    data = export_bytes(
        account(S80, "GitHub:alice", "GitHub"),
        account(S256, "bob@example.com", "Cloudflare", algorithm=2, digits=2),
        account(S512, "carol", "", algorithm=3),
        account(S160, "legacy", "OldBank", type=1, counter=2**40 + 7),
        account(S160, "", "", algorithm=0, digits=0),  # unspecified: SHA1 and 6 digits
    )
    imported = enrolment.parse_migration_uri(export_uri(data))
    assert [a.name for a in imported] == [
        "GitHub: alice",
        "Cloudflare: bob@example.com",
        "carol",
        "OldBank: legacy",
        "Imported account 5",
    ]
    assert [secret_of(a) for a in imported] == [S80, S256, S512, S160, S160]
    auths = [a.authenticator for a in imported]
    assert [(x.kind, x.algorithm, x.digits, x.period) for x in auths] == [
        ("totp", "SHA1", 6, 30),
        ("totp", "SHA256", 8, 30),
        ("totp", "SHA512", 6, 30),
        ("hotp", "SHA1", 6, 30),
        ("totp", "SHA1", 6, 30),
    ]
    assert [(x.issuer, x.label) for x in auths] == [
        ("GitHub", "alice"),
        ("Cloudflare", "bob@example.com"),
        (None, "carol"),
        ("OldBank", "legacy"),
        (None, None),
    ]
    assert auths[3].counter == 2**40 + 7


def test_the_export_published_with_gnome_authenticators_tests_is_read() -> None:
    """A real export (GNOME Authenticator's test vector) gives Discord's account and secret."""
    uri = (
        "otpauth-migration://offline?data=CjYKEExyJfPiZeroMa/MdF%2BnkTISE2pvaG5kb2VAZXhhbXBsZS5"
        "jb20aB0Rpc2NvcmQgASgBMAIQARgBIAA%3D"
    )
    (imported,) = enrolment.parse_migration_uri(uri)
    assert imported.name == "Discord: johndoe@example.com"
    assert secret_of(imported) == "JRZCL47CMXVOQMNPZR2F7J4RGI"
    auth = imported.authenticator
    assert (auth.kind, auth.algorithm, auth.digits, auth.period) == ("totp", "SHA1", 6, 30)


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda d: quote(base64.b64encode(d).decode(), safe=""), id="percent-encoded"),
        pytest.param(lambda d: base64.b64encode(d).decode(), id="raw-plus-and-slash"),
        pytest.param(lambda d: base64.b64encode(d).decode().rstrip("="), id="no-padding"),
        pytest.param(lambda d: base64.urlsafe_b64encode(d).decode(), id="url-safe"),
        pytest.param(lambda d: quote(base64.b64encode(d).decode().rstrip("=")), id="both"),
    ],
)
def test_the_data_parameter_is_read_however_it_was_encoded(encode: Callable[[bytes], str]) -> None:
    """Percent-encoding, a literal '+', missing padding and the URL-safe alphabet all read alike."""
    # This secret's base64 has '+' and '/' in it, and its length needs padding.
    secret = "AAAPX3567777767PX3777773567P7777AEAQCAIBAEAQCAIB"
    data = export_bytes(account(secret, "x", "y"))
    assert {"+", "/"} <= set(base64.b64encode(data).decode()) and len(data) % 3
    (imported,) = enrolment.parse_migration_uri("otpauth-migration://offline?data=" + encode(data))
    assert secret_of(imported) == secret


def test_unknown_fields_and_any_field_order_are_accepted() -> None:
    """Hand-assembled: fields out of order and unknown ones of every wire type are skipped."""
    secret = base64.b32decode(S160)
    params = (
        enum_field(6, 1)  # HOTP, first
        + tag(15, 1) + struct.pack("<d", 1.5)  # unknown 64-bit field
        + length_delimited(3, b"Bank")
        + enum_field(7, 99)  # counter
        + tag(16, 5) + struct.pack("<I", 7)  # unknown 32-bit field
        + length_delimited(1, secret)
        + length_delimited(2, "Bank:émile".encode())
        + enum_field(4, 2)  # SHA256
        + enum_field(5, 2)  # eight digits
        + enum_field(20, 3)  # unknown varint
    )  # fmt: skip
    data = enum_field(2, 1) + length_delimited(99, b"future") + length_delimited(1, params)
    (imported,) = enrolment.parse_migration_uri(export_uri(data))
    auth = imported.authenticator
    assert imported.name == "Bank: émile" and auth.secret == secret
    assert (auth.kind, auth.counter, auth.algorithm, auth.digits) == ("hotp", 99, "SHA256", 8)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x0a", id="tag-without-value"),
        pytest.param(b"\x0a\x05abc", id="length-past-the-end"),
        pytest.param(b"\x0a" + b"\xff" * 11, id="eleven-byte-varint"),
        pytest.param(b"\x10" + b"\xff" * 9 + b"\x7f", id="varint-over-64-bits"),
        pytest.param(b"\x08\x01", id="accounts-field-as-a-varint"),
        pytest.param(b"\x12\x01x", id="version-as-bytes"),
        pytest.param(b"\x0b\x0c", id="group-wire-type"),
        pytest.param(b"\x0e\x00", id="wire-type-6"),
        pytest.param(b"\x02\x00", id="field-number-0"),
        pytest.param(b"\x09\x00\x00\x00", id="fixed64-cut-short"),
        pytest.param(b"\xff\xff\xff\xff", id="garbage"),
    ],
)
def test_a_payload_that_breaks_the_wire_format_is_refused(data: bytes) -> None:
    """Truncated or invalid wire format is a 422 about the payload, not a crash."""
    with pytest.raises(Invalid, match="not a valid migration payload"):
        enrolment.parse_migration_uri(export_uri(data))


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        pytest.param(account(algorithm=4), "MD5", id="md5"),
        pytest.param(account(algorithm=9), "algorithm", id="unknown-algorithm"),
        pytest.param(account(digits=3), "digit count", id="unknown-digits"),
        pytest.param(account(type=0), "neither HOTP nor TOTP", id="unspecified-type"),
        pytest.param(account(secret="MFRGGZDF"), "40 bits", id="short-secret"),
        pytest.param(account(type=1, counter=-5), "counter is negative", id="negative-counter"),
        pytest.param(account(secret="A" * 1640), "longer than 1024 bytes", id="huge-secret"),
    ],
)
def test_an_unusable_account_is_named_by_its_position(second: dict[str, Any], reason: str) -> None:
    """The 422 names the account (the second of three) and why, never its secret."""
    data = export_bytes(account(S80), second, account(S256))
    with pytest.raises(Invalid) as refused:
        enrolment.parse_migration_uri(export_uri(data))
    message = refused.value.message
    assert message.startswith("account 2 of the export: ") and reason in message
    secret = second["secret"]
    for leak in (base64.b32encode(secret).decode(), b64(secret), secret.hex(), S80, S256):
        assert leak.rstrip("=")[:12] not in message


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        pytest.param(
            length_delimited(1, b"\x01" * 20) + enum_field(6, 2) + length_delimited(2, b"\xff"),
            "name is not UTF-8",
            id="name-not-utf8",
        ),
        pytest.param(
            length_delimited(1, b"\x01" * 20) + tag(2, 0) + varint(5),
            "not a valid OtpParameters",
            id="name-as-varint",
        ),
        pytest.param(b"\x0a\x30" + b"\x01" * 10, "not a valid OtpParameters", id="secret-cut"),
    ],
)
def test_a_malformed_account_is_named_by_its_position(params: bytes, reason: str) -> None:
    """Hand-assembled: an account whose own bytes are wrong is refused as that account."""
    good = export_bytes(account())
    data = good + length_delimited(1, params)
    with pytest.raises(Invalid, match=f"^account 2 of the export: .*{reason}"):
        enrolment.parse_migration_uri(export_uri(data))


def test_no_prefix_or_mutation_of_an_export_escapes_as_anything_but_a_422() -> None:
    """Every truncation and thousands of byte flips either parse or raise Invalid, nothing else."""
    data = export_bytes(
        account(S80, "GitHub:alice", "GitHub"),
        account(S256, "bob", "Cloudflare", algorithm=2, digits=2),
        account(S160, "legacy", "OldBank", type=1, counter=300),
    )
    rnd = random.Random(13)
    candidates = [data[:cut] for cut in range(len(data))]
    for _ in range(3000):
        mutated = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
        candidates.append(bytes(mutated))
    candidates += [rnd.randbytes(rnd.randint(1, 80)) for _ in range(2000)]
    outcomes = {"parsed": 0, "refused": 0}
    for candidate in candidates:
        try:
            enrolment.parse_migration_uri(export_uri(candidate))
        except Invalid:
            outcomes["refused"] += 1
        else:
            outcomes["parsed"] += 1
    assert outcomes["refused"] > 1000 and outcomes["parsed"] > 10


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("otpauth://totp/x?secret=" + S80, "must start with otpauth-migration://offline"),
        ("otpauth-migration://online?data=CgA", "must start with otpauth-migration://offline"),
        ("otpauth-migration://offline?version=1", "one data parameter"),
        ("otpauth-migration://offline?data=CgA&data=EgA", "one data parameter"),
        ("otpauth-migration://offline?data=Cg!A", "not base64"),
        ("otpauth-migration://offline?data=C", "not base64"),
        ("otpauth-migration://offline?data=", "no account"),
        ("otpauth-migration://offline?data=EAE", "no account"),  # a version, no accounts
        ("otpauth-migration://[::1?data=x", "malformed"),
        ("otpauth-migration://offline?data=" + "A" * 70_000, "longer than"),
    ],
)
def test_a_malformed_export_uri_is_refused(uri: str, reason: str) -> None:
    """Each kind of bad export URI is a 422 saying what is wrong."""
    with pytest.raises(Invalid, match=reason):
        enrolment.parse_migration_uri(uri)


def test_more_accounts_than_one_import_takes_are_refused() -> None:
    """An export of more than MAX_ACCOUNTS accounts is refused before any is checked."""
    data = export_bytes(*[account(S80, f"user{i}") for i in range(enrolment.MAX_ACCOUNTS + 1)])
    with pytest.raises(Invalid, match="more than 100 accounts"):
        enrolment.parse_migration_uri(export_uri(data))
    most = export_bytes(*[account(S80, f"user{i}") for i in range(enrolment.MAX_ACCOUNTS)])
    assert len(enrolment.parse_migration_uri(export_uri(most))) == enrolment.MAX_ACCOUNTS


@pytest.mark.parametrize(
    ("issuer", "name", "expected", "kept"),
    [
        ("GitHub", "GitHub:alice", "GitHub: alice", ("GitHub", "alice")),
        ("github", "GitHub: alice", "github: alice", ("github", "alice")),
        ("", "ACME:bob", "ACME: bob", ("ACME", "bob")),
        ("Other", "ACME:bob", "Other: ACME:bob", ("Other", "ACME:bob")),
        ("Example", "", "Example", ("Example", None)),
        ("", "  carol\n\x00smith\t", "carol smith", (None, "carol smith")),
        ("", "", "Imported account 1", (None, None)),
        ("I" * 150, "n" * 150, ("I" * 150 + ": " + "n" * 47)[:199] + "…", None),
    ],
)
def test_the_credential_is_named_after_the_issuer_and_the_account(
    issuer: str, name: str, expected: str, kept: tuple[str | None, str | None] | None
) -> None:
    """Names are "issuer: account", cleaned of control characters and cut to 200 characters."""
    (imported,) = enrolment.parse_migration_uri(
        export_uri(export_bytes(account(S80, name, issuer)))
    )
    assert imported.name == expected and len(imported.name) <= 200
    if kept is not None:
        assert (imported.authenticator.issuer, imported.authenticator.label) == kept


# Pictures, read --------------------------------------------------------------------------


def test_the_otpauth_qr_code_is_picked_among_others_and_two_are_refused() -> None:
    """Beside a QR code of a link, the otpauth:// one is read; two different ones are refused."""
    canvas = Image.new("RGB", (900, 420), "white")
    canvas.paste(qr_picture("https://example.com/help", scale=4), (20, 20))
    canvas.paste(qr_picture(TOTP_URI, scale=4), (460, 20))
    auth = enrolment.authenticator_in_image(png(canvas))
    assert auth.secret == base64.b32decode(S160) and auth.issuer == "ACME"
    canvas.paste(qr_picture(f"otpauth://totp/x?secret={S80}", scale=4), (20, 20))
    with pytest.raises(Invalid, match="several otpauth:// QR codes"):
        enrolment.authenticator_in_image(png(canvas))


def test_a_qr_code_drawn_on_a_transparent_background_is_read() -> None:
    """Dark modules on transparent black (as design tools export them) read as on white."""
    gray = qr_picture(TOTP_URI).convert("L")
    alpha = gray.point(lambda v: 255 if v < 128 else 0)
    picture = Image.new("RGBA", gray.size, (0, 0, 0, 0))
    picture.putalpha(alpha)  # every pixel black; only the modules opaque
    assert zxingcpp.read_barcodes(picture.convert("L")) == []  # its colours alone show nothing
    assert enrolment.qr_texts(png(picture)) == [TOTP_URI]


# Imports over HTTP, checked against pyotp ------------------------------------------------


async def credential_with(client: Client, h: dict[str, str], **authenticator: Any) -> str:
    resp = await client.post("/v1/credentials", json={"name": "svc"}, headers=h)
    cred = str((await resp.json())["id"])
    if authenticator:
        resp = await client.put(
            f"/v1/credentials/{cred}/authenticator", json=authenticator, headers=h
        )
        assert resp.status == 200, await resp.text()
    return cred


async def code_of(client: Client, h: dict[str, str], cred: str) -> str:
    resp = await client.get(f"/v1/credentials/{cred}/code", headers=h)
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["code"])


async def assert_totp(client: Client, h: dict[str, str], cred: str, ref: pyotp.TOTP) -> None:
    """The credential's code is pyotp's for the current step (or the next, at a boundary)."""
    before = ref.now()
    code = await code_of(client, h, cred)
    assert code in (before, ref.now())


async def test_an_imported_export_hands_out_pyotps_codes(
    client: Client, new_tenant: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Each imported TOTP and HOTP account gives pyotp's codes for it; no log holds a secret."""
    caplog.set_level(logging.DEBUG)
    h = (await new_tenant())["headers"]
    data = export_bytes(
        account(S80, "GitHub:alice", "GitHub"),
        account(S256, "bob@example.com", "Cloudflare", algorithm=2, digits=2),
        account(S512, "carol", "AWS", algorithm=3, digits=2),
        account(S160, "legacy", "OldBank", type=1, counter=41),
    )
    resp = await client.post(
        "/v1/credentials/import", json={"otpauth_migration_uri": export_uri(data)}, headers=h
    )
    assert resp.status == 201, await resp.text()
    created = (await resp.json())["created"]
    assert [(c["name"], c["kind"]) for c in created] == [
        ("GitHub: alice", "totp"),
        ("Cloudflare: bob@example.com", "totp"),
        ("AWS: carol", "totp"),
        ("OldBank: legacy", "hotp"),
    ]
    ids = [c["id"] for c in created]
    shown = [await (await client.get(f"/v1/credentials/{i}", headers=h)).json() for i in ids]
    assert [s["authenticator"] for s in shown] == [
        {"kind": "totp", "digits": 6, "period": 30, "algorithm": "SHA1"},
        {"kind": "totp", "digits": 8, "period": 30, "algorithm": "SHA256"},
        {"kind": "totp", "digits": 8, "period": 30, "algorithm": "SHA512"},
        {"kind": "hotp", "digits": 6, "period": 30, "algorithm": "SHA1"},
    ]
    assert all(s["has_password"] is False and s["inbox"] for s in shown)
    await assert_totp(client, h, ids[0], RefTOTP(S80))
    await assert_totp(client, h, ids[1], RefTOTP(S256, digits=8, digest=hashlib.sha256))
    await assert_totp(client, h, ids[2], RefTOTP(S512, digits=8, digest=hashlib.sha512))
    hotp = RefHOTP(S160)
    assert [await code_of(client, h, ids[3]) for _ in range(3)] == [
        hotp.at(c) for c in (41, 42, 43)
    ]
    listed = await (await client.get("/v1/credentials", headers=h)).json()
    assert sorted(c["id"] for c in listed["credentials"]) == sorted(ids)
    events = (await (await client.get("/v1/audit?limit=1000", headers=h)).json())["events"]
    recorded = [(e["action"], e["credential_id"]) for e in events]
    for action in ("credential.created", "authenticator.set"):
        assert [c for a, c in recorded if a == action] == ids
    trail = str(events)
    logged = "\n".join(
        TextFormatter().format(r) + JsonFormatter().format(r) for r in caplog.records
    )
    assert "credentials imported" in logged
    for secret in (S80, S256, S512, S160, b64(data)[:24], quote(b64(data))[:24]):
        assert secret[:16] not in logged and secret[:16] not in trail


async def test_an_export_with_one_unusable_account_stores_nothing(
    client: Client, new_tenant: Any
) -> None:
    """All or nothing: an MD5 account third in the export refuses the whole import, by position."""
    h = (await new_tenant())["headers"]
    data = export_bytes(account(S80), account(S256), account(S512, algorithm=4), account(S160))
    resp = await client.post(
        "/v1/credentials/import", json={"otpauth_migration_uri": export_uri(data)}, headers=h
    )
    body = await assert_error(resp, 422, "invalid")
    message = body["error"]["message"]
    assert message.startswith("account 3 of the export: ") and "MD5" in message
    assert S512[:16] not in message and b64(data)[:16] not in message
    listed = await (await client.get("/v1/credentials", headers=h)).json()
    assert listed["credentials"] == []


async def test_an_export_is_imported_from_a_photo_of_its_qr_code(
    client: Client, new_tenant: Any
) -> None:
    """A JPEG photo of the app's "Transfer accounts" screen imports its accounts."""
    h = (await new_tenant())["headers"]
    data = export_bytes(
        account(S80, "alice", "GitHub"),
        account(S160, "legacy", "OldBank", type=1, counter=7, algorithm=2),
    )
    photo = photo_jpeg(phone_screenshot(export_uri(data), seed=3, scale=6), angle=-5)
    resp = await client.post("/v1/credentials/import", json={"qr_image": b64(photo)}, headers=h)
    assert resp.status == 201, await resp.text()
    first, second = (await resp.json())["created"]
    assert (first["name"], second["name"]) == ("GitHub: alice", "OldBank: legacy")
    await assert_totp(client, h, first["id"], RefTOTP(S80))
    assert await code_of(client, h, second["id"]) == RefHOTP(S160, digest=hashlib.sha256).at(7)


# Pictures of an enrolment QR code ---------------------------------------------------------


async def test_a_screenshot_of_the_enrolment_page_sets_the_authenticator(
    client: Client, new_tenant: Any
) -> None:
    """A PNG phone screenshot with the QR code among text and noise stores its authenticator."""
    h = (await new_tenant())["headers"]
    cred = await credential_with(client, h)
    uri = f"otpauth://totp/Shop:dana%40example.com?secret={S256}&issuer=Shop&digits=8&algorithm=SHA256"
    shot = png(phone_screenshot(uri, seed=1))
    resp = await client.put(
        f"/v1/credentials/{cred}/authenticator", json={"qr_image": b64(shot)}, headers=h
    )
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"kind": "totp", "digits": 8, "period": 30, "algorithm": "SHA256"}
    await assert_totp(client, h, cred, RefTOTP(S256, digits=8, digest=hashlib.sha256))


async def test_a_turned_lossy_photo_of_the_qr_code_sets_the_authenticator(
    client: Client, new_tenant: Any
) -> None:
    """A JPEG (quality 70) photo, scaled and turned 6 degrees, as a data: URL, is read too."""
    h = (await new_tenant())["headers"]
    cred = await credential_with(client, h)
    uri = f"otpauth://hotp/Bank:erin?secret={S80}&issuer=Bank&counter=12"
    photo = photo_jpeg(phone_screenshot(uri, seed=2), angle=6, quality=70)
    resp = await client.put(
        f"/v1/credentials/{cred}/authenticator",
        json={"qr_image": "data:image/jpeg;base64," + b64(photo)},
        headers=h,
    )
    assert resp.status == 200, await resp.text()
    assert await code_of(client, h, cred) == RefHOTP(S80).at(12)


def near_five_mib_screenshot(qr_text: str) -> bytes:
    """A PNG just under 5 MiB: a screenshot with photos (incompressible) above and below its QR."""
    shot = phone_screenshot(qr_text, seed=4, noise=0.0)
    rnd = random.Random(5)
    for top, bottom in ((130, 800), (1100, 1865)):
        size = (shot.width, bottom - top)
        photo = Image.frombytes("RGB", size, rnd.randbytes(size[0] * size[1] * 3))
        shot.paste(photo, (0, top))
    return png(shot)


async def test_a_picture_of_almost_5_mib_is_accepted_on_its_routes_only(
    client: Client, new_tenant: Any
) -> None:
    """A 5 MiB picture (6.7 MiB of JSON) passes on the picture route; other routes keep 64 KiB."""
    h = (await new_tenant())["headers"]
    cred = await credential_with(client, h)
    big = near_five_mib_screenshot(TOTP_URI)
    assert 4.8 * 1024 * 1024 < len(big) <= enrolment.MAX_IMAGE_BYTES
    body = {"qr_image": b64(big)}
    resp = await client.put(f"/v1/credentials/{cred}/authenticator", json=body, headers=h)
    assert resp.status == 200, await resp.text()
    await assert_totp(client, h, cred, RefTOTP(S160))
    assert len(b64(big)) > 100 * MAX_BODY
    await assert_error(
        await client.post("/v1/credentials", json={"name": "x", **body}, headers=h), 413
    )
    await assert_error(
        await client.put(f"/v1/credentials/{cred}/extraction", json=body, headers=h), 413
    )


def forged_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares *width* x *height* pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)

    def framed(body: bytes) -> bytes:
        return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))

    return b"\x89PNG\r\n\x1a\n" + framed(chunk) + framed(idat) + framed(b"IEND")


def gif() -> bytes:
    out = io.BytesIO()
    qr_picture(TOTP_URI).save(out, "GIF")
    return out.getvalue()


def bilevel_png(width: int, height: int) -> bytes:
    """A real, all-white PNG of many pixels and few bytes."""
    out = io.BytesIO()
    Image.new("1", (width, height), 1).save(out, "PNG")
    return out.getvalue()


EXPORT_URI = export_uri(export_bytes(account(S80, "alice", "GitHub")))

#: (id, the qr_image field, status, words of the message).
BAD_PICTURES: list[tuple[str, Callable[[], str], int, str]] = [
    ("not-base64", lambda: "this is not base64!", 422, "not base64"),
    ("bad-data-url", lambda: "data:image/png," + b64(png(qr_picture(TOTP_URI))), 422, "base64"),
    ("not-an-image", lambda: b64(b"just some text, no picture at all"), 422, "not a PNG or JPEG"),
    ("a-gif", lambda: b64(gif()), 422, "not a PNG or JPEG"),
    (
        "truncated-png",
        lambda: b64(png(phone_screenshot(TOTP_URI, seed=6))[:300_000]),
        422,
        "could not be decoded",
    ),
    ("over-5-mib", lambda: b64(random.Random(7).randbytes(5 * 1024 * 1024 + 1)), 413, "5 MiB"),
    ("60-megapixels", lambda: b64(bilevel_png(10_000, 6_000)), 413, "50 megapixels"),
    ("forged-header", lambda: b64(forged_png(200_000, 200_000)), 413, "50 megapixels"),
    ("no-qr-code", lambda: b64(png(phone_screenshot(None, seed=8))), 422, "no QR code"),
    (
        "qr-not-otpauth",
        lambda: b64(png(phone_screenshot("https://example.com/enrol", seed=9))),
        422,
        "otpauth:// URI",
    ),
    (
        "qr-bad-otpauth",
        lambda: b64(png(qr_picture("otpauth://totp/x?secret=MFRGGZDF"))),
        422,
        "40 bits",
    ),
    (
        "an-export-qr",
        lambda: b64(png(phone_screenshot(EXPORT_URI, seed=10))),
        422,
        "POST /v1/credentials/import",
    ),
]


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [pytest.param(make, status, words, id=name) for name, make, status, words in BAD_PICTURES],
)
async def test_a_bad_picture_is_refused_and_the_authenticator_kept(
    client: Client, new_tenant: Any, make: Callable[[], str], status: int, words: str
) -> None:
    """Each bad picture is a 4xx in the error shape; the stored authenticator is unchanged."""
    h = (await new_tenant())["headers"]
    cred = await credential_with(client, h, otpauth_uri=TOTP_URI)
    resp = await client.put(
        f"/v1/credentials/{cred}/authenticator", json={"qr_image": make()}, headers=h
    )
    body = await assert_error(resp, status)
    assert words in body["error"]["message"]
    assert "MFRGGZDF" not in body["error"]["message"]
    shown = await (await client.get(f"/v1/credentials/{cred}", headers=h)).json()
    assert shown["authenticator"] == {
        "kind": "totp",
        "digits": 6,
        "period": 30,
        "algorithm": "SHA1",
    }
    await assert_totp(client, h, cred, RefTOTP(S160))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param({"otpauth_migration_uri": "otpauth-migration://offline?data=Cg"}, "payload"),
        pytest.param({"otpauth_migration_uri": TOTP_URI}, "otpauth-migration://offline"),
        pytest.param(
            {"qr_image": b64(png(phone_screenshot(TOTP_URI, seed=11)))},
            "PUT /v1/credentials/{id}/authenticator",
            id="qr-of-one-account",
        ),
        pytest.param({"qr_image": b64(b"GIF89a")}, "not a PNG or JPEG", id="not-an-image"),
        pytest.param(
            {"qr_image": b64(png(qr_picture(EXPORT_URI))), "otpauth_migration_uri": EXPORT_URI},
            "one of them",
            id="both",
        ),
        pytest.param({}, "one of them", id="neither"),
        pytest.param({"otpauth_uri": TOTP_URI}, "unknown field", id="unknown-field"),
    ],
)
async def test_a_bad_import_is_refused_and_nothing_is_stored(
    client: Client, new_tenant: Any, body: dict[str, str], words: str
) -> None:
    """Each bad import is a 422 naming what is wrong, and no credential appears."""
    h = (await new_tenant())["headers"]
    resp = await client.post("/v1/credentials/import", json=body, headers=h)
    assert words in (await assert_error(resp, 422, "invalid"))["error"]["message"]
    listed = await (await client.get("/v1/credentials", headers=h)).json()
    assert listed["credentials"] == []


@pytest.mark.parametrize(
    "route", ["PUT /v1/credentials/{cred}/authenticator", "POST /v1/credentials/import"]
)
async def test_a_body_past_8_mib_is_refused_on_the_picture_routes(
    client: Client, new_tenant: Any, route: str
) -> None:
    """Even the picture routes have a limit: past 8 MiB the body is a 413, unread."""
    h = (await new_tenant())["headers"]
    cred = await credential_with(client, h)
    method, path = route.split()
    data = b'{"qr_image": "' + b"A" * (8 * 1024 * 1024) + b'"}'
    resp = await client.request(method, path.format(cred=cred), data=data, headers=h)
    await assert_error(resp, 413, "too_large")


async def test_pictures_are_decoded_off_the_event_loop(
    client: Client, new_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a picture is being decoded, on a thread of its own, other requests are answered."""
    h = (await new_tenant())["headers"]
    cred = await credential_with(client, h)
    entered, release = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}
    real = enrolment.qr_texts

    def slow(image: bytes) -> list[str]:
        seen["thread"] = threading.current_thread()
        entered.set()
        seen["released"] = release.wait(timeout=30)
        return real(image)

    monkeypatch.setattr(enrolment, "qr_texts", slow)
    shot = b64(png(qr_picture(TOTP_URI)))
    put = asyncio.ensure_future(
        client.put(f"/v1/credentials/{cred}/authenticator", json={"qr_image": shot}, headers=h)
    )
    assert await asyncio.to_thread(entered.wait, 30)
    other = await client.get("/v1/credentials", headers=h)  # answered while the decoder waits
    assert other.status == 200
    release.set()
    resp = await put
    assert resp.status == 200, await resp.text()
    assert seen["released"] is True
    assert seen["thread"] is not threading.main_thread()


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        pytest.param(f"otpauth://totp/{'L' * 201}?secret={S80}", "label is longer", id="label"),
        pytest.param(f"otpauth://totp/x?secret={S80}&issuer={'I' * 201}", "issuer", id="issuer"),
        pytest.param(f"otpauth://totp/a%00b?secret={S80}", "NUL", id="nul"),
        pytest.param(f"otpauth://hotp/x?secret={S80}&counter={2**63}", "below 2**63", id="counter"),
    ],
)
@pytest.mark.parametrize("shape", ["otpauth_uri", "qr_image"])
async def test_an_authenticator_the_store_cannot_hold_is_a_422(
    client: Client, new_tenant: Any, uri: str, words: str, shape: str
) -> None:
    """A label, issuer or counter past the columns' limits is refused, not a database error."""
    h = (await new_tenant())["headers"]
    cred = await credential_with(client, h)
    value = uri if shape == "otpauth_uri" else b64(png(qr_picture(uri, scale=3)))
    resp = await client.put(f"/v1/credentials/{cred}/authenticator", json={shape: value}, headers=h)
    assert words in (await assert_error(resp, 422, "invalid"))["error"]["message"]


async def test_an_import_that_fails_while_storing_leaves_nothing(
    gateway: Gateway, client: Client, new_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The accounts are stored in one transaction: a failure at the third leaves none."""
    h = (await new_tenant())["headers"]
    tenant = await gateway.services.tenants.authenticate(h["Authorization"][7:])
    assert tenant.tenant_id is not None
    accounts = enrolment.parse_migration_uri(
        export_uri(export_bytes(*[account(S80, f"user{i}") for i in range(4)]))
    )
    real = credential_rows.upsert_authenticator
    calls = []

    async def failing(conn: Any, **values: Any) -> None:
        calls.append(values["credential_id"])
        if len(calls) == 3:
            raise RuntimeError("the disk is full")
        await real(conn, **values)

    monkeypatch.setattr(credential_rows, "upsert_authenticator", failing)
    with pytest.raises(RuntimeError, match="disk is full"):
        await gateway.services.credentials.import_accounts(tenant.tenant_id, accounts)
    assert len(calls) == 3
    listed = await (await client.get("/v1/credentials", headers=h)).json()
    assert listed["credentials"] == []
    monkeypatch.setattr(credential_rows, "upsert_authenticator", real)
    created = await gateway.services.credentials.import_accounts(tenant.tenant_id, accounts)
    assert [c.name for c in created] == [f"Example: user{i}" for i in range(4)]
