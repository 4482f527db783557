"""Tests for gateway.otp: RFC vectors, otpauth URI parsing, validation messages, windows."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from typing import Any
from urllib.parse import quote

import pyotp
import pytest

from gateway import errors
from gateway.otp import (
    Algorithm,
    Authenticator,
    decode_secret,
    from_fields,
    hotp_code,
    parse_otpauth_uri,
    totp_code,
    totp_window,
)

from .helpers import SHARED, need_shared

VECTORS_PATH = SHARED / "corpus" / "rfc_vectors.json"
MIN_VECTORS = 28  # RFC 4226 has 10 HOTP rows, RFC 6238 has 18 TOTP rows

# A recognisable secret (the base32 of "Hello!\xde\xad\xbe\xefHello") for leak checks.
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"
SECRET_BYTES = base64.b32decode(SECRET)


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def _load_vectors() -> list[Any]:
    """One pytest.param per RFC row: (kind, algorithm, seed bytes, digits, moving input, code)."""
    if not VECTORS_PATH.is_file():
        return [pytest.param(None, id="no-vectors")]  # the test skips, or fails in CI
    data = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    hotp, totp = data["hotp_rfc4226"], data["totp_rfc6238"]
    assert totp["t0"] == 0
    assert totp["time_step_seconds"] == 30
    assert hotp["digits"] == 6
    params = [
        pytest.param(
            ("hotp", "SHA1", bytes.fromhex(hotp["secret_hex"]), 6, v["count"], v["hotp"]),
            id=f"hotp-count{v['count']}",
        )
        for v in hotp["vectors"]
    ]
    params += [
        pytest.param(
            (
                "totp",
                v["mode"],
                bytes.fromhex(totp["seeds"][v["mode"]]["hex"]),
                totp["digits"],
                v["time_seconds"],
                v["totp"],
            ),
            id=f"totp-{v['mode']}-{v['time_seconds']}",
        )
        for v in totp["vectors"]
    ]
    return params


VECTORS = _load_vectors()


class _PyotpHOTP(pyotp.HOTP):
    """Stock pyotp with its 112-bit floor lowered to RFC 4226's 80, to cross-check short keys."""

    min_secret_length_bits = 80


def _pyotp_hotp(key: bytes, counter: int, digits: int = 6, algorithm: str = "SHA1") -> str:
    """The code pyotp computes, an implementation independent of gateway.otp."""
    digest = getattr(hashlib, algorithm.lower())
    return str(_PyotpHOTP(_b32(key), digits=digits, digest=digest).at(counter))


def test_vector_count_above_floor() -> None:
    """The RFC vector file yields at least the 28 rows the two RFCs print."""
    need_shared(VECTORS_PATH)
    assert len(VECTORS) >= MIN_VECTORS


@pytest.mark.parametrize("builder", ["fields", "uri"])
@pytest.mark.parametrize("vector", VECTORS)
def test_rfc_vector(vector: tuple[str, str, bytes, int, int, str], builder: str) -> None:
    """Each RFC 4226/6238 row comes out right through from_fields and through an otpauth URI."""
    need_shared(VECTORS_PATH)
    kind, algorithm, seed, digits, moving, expected = vector
    if builder == "fields":
        auth = from_fields(secret=_b32(seed), kind=kind, digits=digits, algorithm=algorithm)
    else:
        uri = f"otpauth://{kind}/RFC:test?secret={_b32(seed)}&digits={digits}&algorithm={algorithm}"
        auth = parse_otpauth_uri(uri + ("&counter=0" if kind == "hotp" else ""))
    if kind == "hotp":
        assert hotp_code(auth, moving) == expected
    else:
        assert totp_code(auth, float(moving)) == expected


def test_codes_match_stock_pyotp() -> None:
    """Random keys, algorithms, digits, counters and times agree with stock pyotp."""
    rng = random.Random(4226)
    for _ in range(300):
        raw = rng.randbytes(rng.choice([14, 20, 32, 64]))
        algorithm: Algorithm = rng.choice(["SHA1", "SHA256", "SHA512"])
        digits, period = rng.randint(6, 10), rng.choice([15, 30, 60, 120])
        at = rng.uniform(0, 4e9)
        digest = getattr(hashlib, algorithm.lower())
        auth = Authenticator("totp", raw, digits=digits, period=period, algorithm=algorithm)
        stock = pyotp.TOTP(_b32(raw), digits=digits, digest=digest, interval=period)
        assert totp_code(auth, at) == stock.at(at)
        counter = rng.randrange(2**64)
        hotp = Authenticator("hotp", raw, digits=digits, algorithm=algorithm)
        stock_hotp = pyotp.HOTP(_b32(raw), digits=digits, digest=digest)
        assert hotp_code(hotp, counter) == stock_hotp.at(counter)


def test_80_bit_secret_and_long_period_work() -> None:
    """A 16-character (80-bit) secret and a 300 s period, both refused by stock pyotp, work."""
    raw = b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a"
    text = _b32(raw)
    assert len(text) == 16
    auth = from_fields(secret=text, kind="totp", period=300)
    at = 1_700_000_123.0
    assert totp_code(auth, at) == _pyotp_hotp(raw, int(at // 300), 6, "SHA1")
    hotp = from_fields(secret=text.lower(), kind="hotp")
    assert hotp_code(hotp, 7) == _pyotp_hotp(raw, 7, 6, "SHA1")


def test_totp_window_at_step_boundary() -> None:
    """A time exactly on a step boundary opens the next step, valid until one period later."""
    auth = from_fields(secret=SECRET, kind="totp")
    code, until = totp_window(auth, 60.0)
    assert until == 90.0
    assert code == totp_code(auth, 89.999) == _pyotp_hotp(auth.secret, 2)
    assert code != totp_code(auth, 59.0)


def test_totp_window_last_second_of_step() -> None:
    """The last second and last instant of a step still belong to it and expire at its end."""
    auth = from_fields(secret=SECRET, kind="totp", period=30)
    for at in (59.0, 59.999999):
        code, until = totp_window(auth, at)
        assert until == 60.0
        assert code == totp_code(auth, 30.0) == _pyotp_hotp(auth.secret, 1)
    assert totp_window(auth, 0.0)[1] == 30.0


def test_code_functions_refuse_misuse() -> None:
    """Codes need the right kind, a time at or after the epoch and a counter in 0..2**64-1."""
    totp = from_fields(secret=SECRET, kind="totp")
    hotp = from_fields(secret=SECRET, kind="hotp")
    with pytest.raises(ValueError, match="hotp authenticator"):
        hotp_code(totp, 0)
    with pytest.raises(ValueError, match="totp authenticator"):
        totp_code(hotp, 0.0)
    for at in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="epoch"):
            totp_window(totp, at)
    for counter in (-1, 2**64):
        with pytest.raises(ValueError, match="counter"):
            hotp_code(hotp, counter)
    assert len(hotp_code(hotp, 2**64 - 1)) == 6


def _uri(label: str = "Example:alice", kind: str = "totp", **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"secret": SECRET, **params}.items())
    return f"otpauth://{kind}/{label}?{query}"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        pytest.param(
            _uri("ACME%20Co:john.doe%40email.com", issuer="ACME%20Co", algorithm="SHA1"),
            {"issuer": "ACME Co", "label": "john.doe@email.com"},
            id="encoded-label-and-issuer",
        ),
        pytest.param(_uri("Example%3Aalice"), {"issuer": "Example", "label": "alice"}, id="%3A"),
        pytest.param(_uri("Example:%20alice"), {"issuer": "Example", "label": "alice"}, id="space"),
        pytest.param(_uri("alice"), {"issuer": None, "label": "alice"}, id="no-issuer"),
        pytest.param(_uri("alice", issuer="Ex"), {"issuer": "Ex", "label": "alice"}, id="param"),
        pytest.param(_uri("Old:alice", issuer="New"), {"issuer": "New"}, id="param-wins"),
        pytest.param("otpauth://totp?secret=" + SECRET, {"label": None}, id="no-label"),
        pytest.param(_uri(secret=SECRET.lower()), {}, id="lower-case-secret"),
        pytest.param(_uri(secret="JBSWY3DPEHPK3PXPJBSWY3A="), {}, id="padded"),
        pytest.param(_uri(secret="JBSWY3DPEHPK3PXPJBSWY3A"), {}, id="unpadded"),
        pytest.param(_uri(secret="jbsw%20y3dp+ehpk-3pxp%20jbsw%20y3dp"), {}, id="spaces-dashes"),
        pytest.param(_uri(algorithm="sha1"), {"algorithm": "SHA1"}, id="sha1"),
        pytest.param(_uri(algorithm="Sha256"), {"algorithm": "SHA256"}, id="Sha256"),
        pytest.param(_uri(algorithm="SHA512"), {"algorithm": "SHA512"}, id="SHA512"),
        pytest.param(_uri(digits="8", period="60"), {"digits": 8, "period": 60}, id="8-digits-60s"),
        pytest.param(_uri(digits="10", period="300"), {"digits": 10, "period": 300}, id="bounds"),
        pytest.param(_uri(kind="hotp", counter="42"), {"kind": "hotp", "counter": 42}, id="hotp"),
        pytest.param(_uri(kind="hotp"), {"kind": "hotp", "counter": 0}, id="hotp-no-counter"),
        pytest.param(_uri(kind="TOTP", counter="9"), {"kind": "totp", "counter": 0}, id="totp-ctr"),
        pytest.param(_uri(image="https%3A%2F%2Fx.test%2Fa.png"), {}, id="unknown-param-ignored"),
        pytest.param(_uri(digits="8") + "&digits=8", {"digits": 8}, id="duplicate-same-value"),
    ],
)
def test_parse_accepts(uri: str, expected: dict[str, object]) -> None:
    """Real-world otpauth variants parse to the intended fields and the recognisable secret."""
    auth = parse_otpauth_uri(uri)
    defaults = {"kind": "totp", "digits": 6, "period": 30, "algorithm": "SHA1", "counter": 0}
    for name, value in {**defaults, **expected}.items():
        assert getattr(auth, name) == value, name
    assert auth.secret.startswith(SECRET_BYTES[:14])


# (uri, message fragment); each uses a recognisable secret that must not appear in the message.
URI_REJECTIONS = [
    pytest.param(_uri().replace("otpauth", "https"), "scheme must be otpauth", id="scheme"),
    pytest.param(_uri(kind="motp"), "type must be totp or hotp", id="type"),
    pytest.param("otpauth://[totp/x?secret=" + SECRET, "malformed", id="malformed"),
    pytest.param("otpauth://totp/x?issuer=Ex", "no secret parameter", id="missing-secret"),
    pytest.param(_uri(secret=""), "the secret is empty", id="empty-secret"),
    pytest.param(_uri(secret=SECRET[:-1] + "1"), "not valid base32", id="bad-character"),
    pytest.param(_uri(secret=SECRET + "J"), "not valid base32", id="impossible-length"),
    pytest.param(_uri(secret="%C3%9F" + SECRET), "not valid base32", id="non-ascii"),
    pytest.param(
        _uri(secret=SECRET[:13]), "the secret is 64 bits; at least 80 are required", id="short"
    ),
    pytest.param(_uri(digits="5"), "digits must be between 6 and 10", id="digits-5"),
    pytest.param(_uri(digits="11"), "digits must be between 6 and 10", id="digits-11"),
    pytest.param(_uri(digits="six"), "digits must be a whole number", id="digits-word"),
    pytest.param(_uri(period="0"), "period must be between 1 and 300 seconds", id="period-0"),
    pytest.param(_uri(period="-30"), "period must be between 1 and 300 seconds", id="period-neg"),
    pytest.param(_uri(period="301"), "period must be between 1 and 300 seconds", id="period-301"),
    pytest.param(_uri(period="30.5"), "period must be a whole number", id="period-fraction"),
    pytest.param(_uri(period="1_0"), "period must be a whole number", id="period-underscore"),
    pytest.param(_uri(algorithm="MD5"), "algorithm must be SHA1, SHA256 or SHA512", id="md5"),
    pytest.param(_uri(kind="hotp", counter="-1"), "counter must not be negative", id="ctr-neg"),
    pytest.param(_uri(kind="hotp", counter="x"), "counter must be a whole number", id="ctr-word"),
    pytest.param(_uri(kind="hotp", counter=str(2**64)), "below 2**64", id="counter-too-big"),
    pytest.param(
        _uri() + "&secret=" + SECRET[:-2] + "AA",
        "the secret parameter appears more than once with different values",
        id="conflicting-secret",
    ),
    pytest.param(
        _uri(digits="6") + "&DIGITS=8",
        "the digits parameter appears more than once with different values",
        id="conflicting-digits",
    ),
    pytest.param(_uri(image="x" * 4096), "longer than 4096 characters", id="too-long"),
]


@pytest.mark.parametrize(("uri", "message"), URI_REJECTIONS)
def test_parse_rejects(uri: str, message: str) -> None:
    """Each defect is refused with errors.Invalid naming the defect, never the secret or the URI."""
    with pytest.raises(errors.Invalid) as caught:
        parse_otpauth_uri(uri)
    assert message in caught.value.message
    assert caught.value.code == "invalid"
    _assert_no_leak(caught.value, uri)


def _assert_no_leak(error: BaseException, *texts: str) -> None:
    rendered = f"{error} {error!r} {error.args!r}".lower()
    assert SECRET[:10].lower() not in rendered
    assert SECRET_BYTES.hex() not in rendered
    for text in texts:
        assert text.lower() not in rendered
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


FIELD_REJECTIONS = [
    pytest.param({"kind": "motp"}, "kind must be totp or hotp", id="kind"),
    pytest.param({"kind": 1}, "kind must be totp or hotp", id="kind-int"),
    pytest.param({"secret": SECRET + "0"}, "not valid base32", id="secret-char"),
    pytest.param({"secret": SECRET[:13]}, "64 bits; at least 80", id="secret-short"),
    pytest.param({"secret": b"JBSWY3DPEHPK3PXP"}, "the secret must be text", id="secret-bytes"),
    pytest.param({"secret": SECRET * 200}, "longer than 4096", id="secret-long"),
    pytest.param({"digits": True}, "digits must be an integer, not bool", id="digits-bool"),
    pytest.param({"digits": "6"}, "digits must be an integer, not str", id="digits-str"),
    pytest.param({"digits": 6.0}, "digits must be an integer, not float", id="digits-float"),
    pytest.param({"digits": 12}, "digits must be between 6 and 10", id="digits-range"),
    pytest.param({"period": 0}, "period must be between 1 and 300 seconds", id="period-0"),
    pytest.param({"period": "30"}, "period must be an integer, not str", id="period-str"),
    pytest.param({"algorithm": "sha3"}, "algorithm must be SHA1, SHA256 or SHA512", id="algo"),
    pytest.param({"algorithm": 1}, "algorithm must be SHA1, SHA256 or SHA512", id="algo-int"),
    pytest.param({"counter": -5}, "counter must not be negative", id="counter-neg"),
    pytest.param({"counter": False}, "counter must be an integer, not bool", id="counter-bool"),
]


@pytest.mark.parametrize(("overrides", "message"), FIELD_REJECTIONS)
def test_from_fields_rejects(overrides: dict[str, Any], message: str) -> None:
    """from_fields refuses wrong values and wrong types with the same messages as URI parsing."""
    fields: dict[str, Any] = {"secret": SECRET, "kind": "hotp", **overrides}
    with pytest.raises(errors.Invalid) as caught:
        from_fields(**fields)
    assert message in caught.value.message
    _assert_no_leak(caught.value)


def test_from_fields_defaults_and_normalisation() -> None:
    """Omitted fields take the defaults; kind and algorithm are case-insensitive."""
    auth = from_fields(secret=f" {SECRET.lower()} ", kind="TOTP", algorithm="sha-256")
    assert (auth.kind, auth.digits, auth.period, auth.algorithm) == ("totp", 6, 30, "SHA256")
    assert (auth.counter, auth.issuer, auth.label, auth.secret) == (0, None, None, SECRET_BYTES)


def test_decode_secret_is_lenient() -> None:
    """Case, spaces, dashes and padding do not matter; 16 characters decode to 80 bits."""
    assert decode_secret("jbsw y3dp-ehpk 3pxp") == decode_secret("JBSWY3DPEHPK3PXP")
    assert len(decode_secret("JBSWY3DPEHPK3PXP")) == 10
    assert decode_secret("MFRGG===") == decode_secret("mfrgg") == b"abc"
    assert decode_secret("MFRGG=") == b"abc"


def test_authenticator_validates_direct_construction() -> None:
    """Building an Authenticator by hand runs the same checks as parsing."""
    with pytest.raises(errors.Invalid, match="72 bits; at least 80"):
        Authenticator("totp", b"123456789")
    with pytest.raises(errors.Invalid, match="digits must be an integer, not bool"):
        Authenticator("totp", SECRET_BYTES, digits=True)
    with pytest.raises(errors.Invalid, match="kind must be totp or hotp"):
        Authenticator("motp", SECRET_BYTES)  # type: ignore[arg-type]


def test_repr_hides_secret() -> None:
    """repr() and str() show the public fields but neither the key bytes nor their base32."""
    auth = parse_otpauth_uri(_uri("Example:alice", issuer="Example"))
    for shown in (repr(auth), str(auth), f"{auth}"):
        assert "secret" not in shown
        assert SECRET_BYTES.hex() not in shown
        assert repr(SECRET_BYTES)[2:-1] not in shown
        assert SECRET[:10] not in shown.upper()
        assert "alice" in shown
        assert "totp" in shown


def test_equality_compares_secret_and_fields() -> None:
    """Authenticators are equal only with the same secret and fields, and stay hashable."""
    one = from_fields(secret=SECRET, kind="totp")
    assert one == from_fields(secret=SECRET.lower(), kind="totp")
    assert one != from_fields(secret=SECRET[:-2] + "AA", kind="totp")
    assert one != from_fields(secret=SECRET, kind="totp", digits=8)
    assert one != "not an authenticator"
    assert len({one, from_fields(secret=SECRET, kind="totp")}) == 1


def test_uri_with_percent_encoded_everything_round_trips_label() -> None:
    """A label percent-encoded in full (as some generators write it) still splits at the colon."""
    label = quote("Big Corp:bob+tag@example.com", safe="")
    auth = parse_otpauth_uri(_uri(label))
    assert (auth.issuer, auth.label) == ("Big Corp", "bob+tag@example.com")
