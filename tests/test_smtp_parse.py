"""Tests for gateway.extraction.mime: MIME structure, charsets, encoded words, limits, junk."""

from __future__ import annotations

import json
import random
import time
from email import policy
from email.charset import BASE64, QP, Charset
from email.header import Header
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.image import MIMEImage
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import pytest

from gateway.extraction.mime import (
    MAX_MESSAGE_ID_CHARS,
    MAX_SUBJECT_CHARS,
    ParsedMail,
    parse_message,
)
from gateway.services.inbound import message_from_mail

from .helpers import SHARED, need_shared

CORPUS = SHARED / "corpus" / "email_dev.jsonl"
CORPUS_CHARSETS = ("utf-8", "iso-8859-1", "windows-1252", "koi8-r", "iso-2022-jp", "gb2312")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def mime(
    subject: str,
    text: str | None,
    html: str | None = None,
    *,
    charset: str = "utf-8",
    cte: str = "quoted-printable",
    sender: str = "Example <no-reply@example.com>",
) -> bytes:
    """A mail as a sender's library writes it: one body or multipart/alternative, CRLF lines."""
    cs = Charset(charset)
    cs.body_encoding = cs.header_encoding = QP if cte == "quoted-printable" else BASE64
    cs.output_charset, cs.output_codec = charset, cs.input_codec  # no shift_jis -> iso-2022-jp
    parts: list[Any] = [
        MIMEText(body, subtype, cs)  # type: ignore[arg-type]  # a Charset picks the encodings
        for body, subtype in ((text, "plain"), (html, "html"))
        if body is not None
    ]
    msg = parts[0] if len(parts) == 1 else MIMEMultipart("alternative", _subparts=parts)
    if subject:
        msg["Subject"] = Header(subject, cs)  # type: ignore[assignment]  # compat32 takes a Header
    msg["From"] = sender
    msg["Message-ID"] = "<abc.123@example.com>"
    return bytes(msg.as_bytes()).replace(b"\n", b"\r\n")


def lines(text: str) -> str:
    """The line-ending normalisation parse_message applies to bodies."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_types(mail: ParsedMail) -> None:
    for value in (mail.subject, mail.text, mail.html, mail.sender, mail.sender_domain):
        assert isinstance(value, str)
        assert "\x00" not in value
        value.encode("utf-8")  # no lone surrogates: safe to store, send and log the lengths of
    assert isinstance(mail.message_id, str)
    assert "\r" not in mail.text and "\r" not in mail.html
    assert "\n" not in mail.subject and len(mail.subject) <= MAX_SUBJECT_CHARS
    assert len(mail.message_id) <= MAX_MESSAGE_ID_CHARS


# --- structure ----------------------------------------------------------------------------


def test_plain_single_part() -> None:
    """A hand-written 7-bit text/plain mail yields every field, with CRLF turned into LF."""
    raw = (
        b"From: Acme Login <Login@Acme.Example>\r\nTo: agent@inbox.test\r\n"
        b"Subject: Your code\r\nMessage-ID: <m1@acme.example>\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\nYour code is 123456.\r\nBye\r\n"
    )
    mail = parse_message(raw)
    assert mail == ParsedMail(
        subject="Your code",
        text="Your code is 123456.\nBye\n",
        html="",
        sender="login@acme.example",
        sender_domain="acme.example",
        message_id="m1@acme.example",
    )


def test_html_only_single_part() -> None:
    """A single-part text/html mail leaves text empty and keeps the raw HTML."""
    mail = parse_message(mime("Code", None, "<p>Your code: <b>424242</b></p>"))
    assert mail.text == ""
    assert mail.html == "<p>Your code: <b>424242</b></p>"


def test_alternative_quoted_printable() -> None:
    """Both parts of a quoted-printable multipart/alternative mail are decoded, soft breaks too."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["Subject"] = "Votre code de vérification : 482913"
    msg["From"] = "Sécurité <securite@exemple.fr>"
    text = "Votre code de vérification est : 482913. " * 4 + "\nIl expire dans 10 minutes.\n"
    html = "<p>Votre code de vérification est&nbsp;: <b>482913</b></p>" * 3 + "\n"
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    raw = msg.as_bytes()
    assert b"=\r\n" in raw  # long lines were soft-broken
    mail = parse_message(raw)
    assert (mail.subject, mail.text, mail.html) == (
        "Votre code de vérification : 482913",
        text,
        html,
    )
    assert mail.sender == "securite@exemple.fr"


SAMPLES = {
    "utf-8": "Ihr Code lautet 123456 — 您的验证码 ✓\n",
    "iso-8859-1": "Votre code : 123456, à bientôt. Grüße!\n",
    "windows-1252": "Your “code” is 123456 – it costs €0…\n",  # noqa: RUF001 - cp1252's own
    "koi8-r": "Ваш код подтверждения: 123456\n",
    "iso-2022-jp": "認証コードは 123456 です。\n有効期限は10分です。\n",
    "shift_jis": "認証コード：123456\n",  # noqa: RUF001 - real Japanese punctuation
    "gb2312": "您的验证码是 123456，请勿泄露。\n",  # noqa: RUF001 - real Chinese punctuation
    "gbk": "您的驗證碼是 123456\n",
    "gb18030": "验证码 123456 𠀀\n",
    "euc-kr": "인증 코드는 123456 입니다.\n",
    "big5": "您的驗證碼是 123456。\n",
}


@pytest.mark.parametrize("cte", ["base64", "quoted-printable"])
@pytest.mark.parametrize("charset", sorted(SAMPLES))
def test_declared_charsets(charset: str, cte: str) -> None:
    """Bodies and encoded-word subjects in each declared charset decode to the original text."""
    sample = SAMPLES[charset]
    raw = mime(sample.splitlines()[0], sample, f"<p>{sample}</p>", charset=charset, cte=cte)
    assert f'charset="{charset}"'.encode() in raw
    mail = parse_message(raw)
    assert mail.text == sample
    assert mail.html == f"<p>{sample}</p>"
    assert mail.subject == sample.splitlines()[0].strip()


def test_8bit_body() -> None:
    """An 8bit body is taken byte for byte and decoded with its declared charset."""
    raw = (
        "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nKód: 123456 ✓\r\n"
    ).encode()
    assert parse_message(raw).text == "Kód: 123456 ✓\n"


def test_attachments_are_skipped() -> None:
    """Parts marked as attachments, non-text parts and attached messages never supply a body."""
    forwarded = MIMEMultipart("alternative", _subparts=[MIMEText("old code 111111", "plain")])
    attached_text = MIMEText("attached code 222222", "plain")
    attached_text.add_header("Content-Disposition", "attachment", filename="codes.txt")
    attached_html = MIMEText("<p>attached 333333</p>", "html")
    attached_html.add_header("Content-Disposition", "attachment; filename=page.html")
    body = MIMEText("<p>Your code: 444444</p>", "html")
    image = MIMEImage(PNG, "png")
    msg = MIMEMultipart(
        "mixed",
        _subparts=[
            MIMEMessage(forwarded),
            attached_text,
            attached_html,
            image,
            MIMEApplication(b"%PDF-1.4"),
            body,
        ],
    )
    mail = parse_message(msg.as_bytes())
    assert mail.text == ""
    assert mail.html == "<p>Your code: 444444</p>"


def test_inline_disposition_is_a_body() -> None:
    """A text part with an inline disposition (and a file name) is still the body."""
    part = MIMEText("Code 555555", "plain")
    part.add_header("Content-Disposition", "inline", filename="body.txt")
    assert parse_message(part.as_bytes()).text == "Code 555555"


def test_nested_multipart() -> None:
    """Text and HTML are found inside mixed > related > alternative, in document order."""
    alternative = MIMEMultipart(
        "alternative",
        _subparts=[MIMEText("plain 123456", "plain"), MIMEText("<p>html 123456</p>", "html")],
    )
    related = MIMEMultipart("related", _subparts=[alternative, MIMEImage(PNG, "png")])
    later = MIMEText("a later text part", "plain")
    msg = MIMEMultipart("mixed", _subparts=[related, MIMEApplication(b"zip"), later])
    mail = parse_message(msg.as_bytes())
    assert (mail.text, mail.html) == ("plain 123456", "<p>html 123456</p>")


# --- charsets that lie, and missing pieces --------------------------------------------------


def _raw_part(content_type: str | None, body: bytes, cte: str | None = None) -> bytes:
    head = b"Subject: t\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n".encode()
    if cte is not None:
        head += f"Content-Transfer-Encoding: {cte}\r\n".encode()
    return head + b"\r\n" + body


@pytest.mark.parametrize(
    ("label", "body", "expected"),
    [
        ("x-unknown", "Código 123456".encode(), "Código 123456"),  # falls back to UTF-8
        ("x-unknown", "Código 123456".encode("latin-1"), "Código 123456"),  # then windows-1252
        ("zlib", b"x\x9c 123456", "x\x9c 123456".encode("latin-1").decode("cp1252", "replace")),
        ("unicode-escape", b"\\u0041 123456", "\\u0041 123456"),  # not a mail charset
        ('"utf-8"', "Código 123456".encode(), "Código 123456"),
        ("windows-874", "รหัส 123456".encode("cp874"), "รหัส 123456"),
        ("utf-7", b"+AOk- +2AA- 123456", "\u00e9 ? 123456"),  # a lone surrogate is replaced
    ],
)
def test_unknown_or_unusable_charset(label: str, body: bytes, expected: str) -> None:
    """Labels Python lacks or that name no text codec fall back to UTF-8, then windows-1252."""
    assert parse_message(_raw_part(f"text/plain; charset={label}", body)).text == expected


@pytest.mark.parametrize(
    ("charset", "body"),
    [
        ("utf-8", "Código 123456 ñ olá".encode("latin-1")),
        ("iso-2022-jp", b"\x1b$B\xff\xfe\x1b(B code 123456 \x80\x81"),
        ("shift_jis", b"\x81 code 123456 \xfd\xfe"),
        ("us-ascii", "naïve 123456".encode("latin-1")),
    ],
)
def test_wrong_declared_charset(charset: str, body: bytes) -> None:
    """Bytes invalid in the declared charset become U+FFFD; the ASCII around them survives."""
    text = parse_message(_raw_part(f"text/plain; charset={charset}", body)).text
    assert "code 123456" in text or "123456" in text
    assert "\ufffd" in text


def test_no_content_type() -> None:
    """A mail without Content-Type is text/plain read as UTF-8, invalid bytes replaced."""
    assert parse_message(_raw_part(None, "Código 123456\r\n".encode())).text == "Código 123456\n"
    assert parse_message(_raw_part(None, b"caf\xe9 123456")).text == "caf\ufffd 123456"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"Subject: only headers",
        b"Subject: only headers\r\n",
        b"Subject: blank body\r\n\r\n",
        b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--b--\r\n",
        b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n",
        b"Subject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    ],
)
def test_empty_or_missing_body(raw: bytes) -> None:
    """Mails with no body, an empty body or empty parts give empty bodies and no error."""
    mail = parse_message(raw)
    check_types(mail)
    assert mail.text.strip() == "" and mail.html == ""


def test_truncated_mail() -> None:
    """A mail cut off at any point still parses, keeping what arrived before the cut."""
    raw = mime("Code 123456", "Your code is 123456\n" * 20, "<p>123456</p>", cte="base64")
    for cut in range(0, len(raw), 7):
        check_types(parse_message(raw[:cut]))
    text_start = raw.index(b"base64\r\n\r\n") + len(b"base64\r\n\r\n")
    mail = parse_message(raw[: text_start + 200])  # inside the base64 text part
    assert mail.subject == "Code 123456"
    assert mail.text.startswith("Your code is 123456\nYour code")


def test_missing_closing_boundary() -> None:
    """Parts before a missing closing delimiter are still read."""
    raw = (
        b"Subject: x\r\nContent-Type: multipart/alternative; boundary=zz\r\n\r\n"
        b"--zz\r\nContent-Type: text/plain\r\n\r\ncode 123456\r\n"
        b"--zz\r\nContent-Type: text/html\r\n\r\n<b>123456</b>\r\n"
    )
    mail = parse_message(raw)
    assert (mail.text, mail.html) == ("code 123456", "<b>123456</b>")


def test_missing_boundary_parameter() -> None:
    """A multipart mail that declares no boundary degrades to empty bodies."""
    raw = b"Subject: x\r\nContent-Type: multipart/mixed\r\n\r\n--b\r\n\r\ncode 123456\r\n--b--\r\n"
    mail = parse_message(raw)
    assert (mail.subject, mail.text, mail.html) == ("x", "", "")


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (b"Y29kZSAxMjM0NTY=", b"code 123456"),  # correct
        (b"Y29kZSAxMjM0NTY", b"code 123456"),  # padding missing
        (b"Y29kZSAx\r\nMjM0NTY=\r\n", b"code 123456"),  # broken into lines
        (b"Y29kZSAxMjM0NTY=Y", b"code 123456"),  # a dangling character after the padding
        (b"Y29k ZSAx!MjM0*NTY", b"code 123456"),  # junk characters inside
        (b"Y29kZSAxMjM0NTYx", b"code 1234561"),
        (b"Y29kZSAxMjM0NTYxM", b"code 1234561"),  # length 1 mod 4: the last sextet is dropped
    ],
)
def test_lenient_base64(encoded: bytes, expected: bytes) -> None:
    """Base64 bodies with bad padding, junk or a dangling character still decode."""
    mail = parse_message(_raw_part("text/plain", encoded, cte="base64"))
    assert mail.text == expected.decode()


def test_line_endings_and_nuls() -> None:
    """CRLF and lone CR become LF, and NUL characters are removed, in bodies and the subject."""
    raw = b"Subject: a\x00b\r\n\r\nline 1\r\nline\x00 2\rline 3\n"
    mail = parse_message(raw)
    assert (mail.subject, mail.text) == ("ab", "line 1\nline 2\nline 3\n")


# --- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("=?utf-8?B?Q8OzZGlnbzogMTIzNDU2?=", "Código: 123456"),
        ("=?UTF-8?Q?C=C3=B3digo:_123456?=", "Código: 123456"),
        ("=?iso-8859-1?q?Votre_code_=E0_usage_unique?=", "Votre code à usage unique"),
        ("=?ISO-8859-1?B?R3L832U=?=", "Grüße"),
        ("Code =?utf-8?q?f=C3=BCr?= you", "Code für you"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=\r\n =?utf-8?q?c?=", "abc"),  # space between words dropped
        ("=?utf-8?b?5Lit?= =?utf-8?b?5paH?=", "中文"),
        ("=?utf-8?q?=E4=B8?= =?utf-8?q?=AD?=", "中"),  # one character split across two words
        ("=?utf-8*en?q?hello?=", "hello"),  # RFC 2231 language tag
        ("=?x-unknown?q?caf=C3=A9?= / =?x-unknown?q?caf=E9?=", "café / café"),
        ("=?koi8-r?b?98HbIMvPxDogMTIzNDU2?=", "Ваш код: 123456"),
        ("=?iso-2022-jp?B?GyRCRyc+WiUzITwlSRsoQiAxMjM0NTY=?=", "認証コード 123456"),
        ("=?gb2312?B?0enWpMLrIDEyMzQ1Ng==?=", "验证码 123456"),
        ("Plain subject\r\n folded", "Plain subject folded"),
        ("=?utf-8?q?line=0Abreak?=", "line break"),  # decoded text stays one line
        ("=?utf-8?b?###?= =?utf-8?q?ok?=", "ok"),  # undecodable word degrades, not raises
        ("=?utf-8?x?bad?= 123456", "=?utf-8?x?bad?= 123456"),  # not an encoded word
        ("=?utf-8?b?w6k", "=?utf-8?b?w6k"),  # unterminated
    ],
)
def test_rfc2047_subjects(header: str, expected: str) -> None:
    """Encoded words (B and Q, any charset) decode, joined across folds and split characters."""
    raw = b"Subject: " + header.encode() + b"\r\n\r\nbody"
    assert parse_message(raw).subject == expected


def test_raw_utf8_subject_with_encoded_word() -> None:
    """A raw UTF-8 header (RFC 6532) is read as UTF-8, encoded words in it still decoded."""
    raw = "Subject: Ваш код 123456 =?utf-8?q?=E2=9C=93?=\r\n\r\n".encode()
    assert parse_message(raw).subject == "Ваш код 123456 ✓"
    assert parse_message(b"Subject: caf\xe9 123456\r\n\r\n").subject == "café 123456"


def test_subject_is_one_capped_line() -> None:
    """A huge subject is cut to MAX_SUBJECT_CHARS and never holds a line break."""
    raw = b"Subject: " + b"x" * 100_000 + b"\r\n\r\n"
    assert parse_message(raw).subject == "x" * MAX_SUBJECT_CHARS
    encoded = "=?utf-8?b?" + "5Lit" * 5000 + "?="
    assert parse_message(f"Subject: {encoded}\r\n\r\n".encode()).subject == "中" * 1000


@pytest.mark.parametrize(
    ("header", "sender", "domain"),
    [
        ("no-reply@Example.COM", "no-reply@example.com", "example.com"),
        ("Acme <Login@Acme.Example>", "login@acme.example", "acme.example"),
        ('"Doe, John" <j.doe@mail.example.org>', "j.doe@mail.example.org", "mail.example.org"),
        ("=?utf-8?q?S=C3=A9curit=C3=A9?= <s@exemple.fr>", "s@exemple.fr", "exemple.fr"),
        ("Bücher <info@bücher.example>", "info@xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("<bounce@example.com.>", "bounce@example.com", "example.com"),
        ("undisclosed-recipients:;", "", ""),
        ("no address here", "", ""),
        ("@example.com", "", ""),
        ("a" * 400 + "@example.com", "", ""),
    ],
)
def test_sender(header: str, sender: str, domain: str) -> None:
    """The From address is lower-cased, its domain split off (IDNA for Unicode), junk gives ""."""
    mail = parse_message(f"From: {header}\r\nSubject: x\r\n\r\n".encode())
    assert (mail.sender, mail.sender_domain) == (sender, domain)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("<abc.123@example.com>", "abc.123@example.com"),
        ("  <abc@example.com> (comment)", "abc@example.com"),
        ("bare-id@example.com", "bare-id@example.com"),
        ("<" + "x" * 1000 + "@example.com>", "x" * MAX_MESSAGE_ID_CHARS),
    ],
)
def test_message_id(header: str, expected: str) -> None:
    """Message-ID loses its angle brackets and is capped at MAX_MESSAGE_ID_CHARS."""
    raw = f"Message-ID: {header}\r\n\r\n".encode()
    assert parse_message(raw).message_id == expected


def test_missing_headers() -> None:
    """A mail without Subject, From or Message-ID gives empty strings for them."""
    mail = parse_message(b"\r\nbody 123456\r\n")
    assert (mail.subject, mail.sender, mail.sender_domain, mail.message_id) == ("", "", "", "")
    assert mail.text == "body 123456\n"


def test_repr_shows_no_content() -> None:
    """repr shows the lengths of subject, text and html, never their content."""
    mail = parse_message(mime("Code 918273", "Your code is 918273", "<b>918273</b>"))
    assert "918273" in mail.text
    assert "918273" not in repr(mail) and "918273" not in str(mail)
    assert "subject=<11 chars>" in repr(mail) and "html=<13 chars>" in repr(mail)


# --- limits and hostile input ------------------------------------------------------------------


def test_many_parts_stop_the_walk() -> None:
    """After max_parts parts the walk stops, so a body behind many attachments is not read."""
    attachments = [MIMEApplication(b"x", Name=f"{i}.bin") for i in range(60)]
    msg = MIMEMultipart("mixed", _subparts=[*attachments, MIMEText("code 123456", "plain")])
    assert parse_message(msg.as_bytes()).text == ""
    assert parse_message(msg.as_bytes(), max_parts=100).text == "code 123456"
    assert parse_message(msg.as_bytes(), max_parts=0).text == ""


def test_huge_part_is_truncated() -> None:
    """A body is cut at max_part_bytes decoded bytes, an incomplete last character dropped."""
    body = "é" * 400_000  # 800,000 UTF-8 bytes
    mail = parse_message(mime("big", body, "<p>" + body, cte="base64"))
    assert mail.text == "é" * (256 * 1024 // 2)
    assert mail.html == "<p>" + "é" * ((256 * 1024 - 3) // 2)
    small = parse_message(mime("big", body, cte="base64"), max_part_bytes=1001)
    assert small.text == "é" * 500


def test_big_real_mail_is_read_whole() -> None:
    """A 1 MB mail whose text follows a large attachment is parsed to its end."""
    attachment = MIMEApplication(random.Random(1).randbytes(700_000), Name="photo.jpg")
    html = MIMEText("<p>" + "padding line\n" * 5000 + "code 123456</p>", "html")
    msg = MIMEMultipart("mixed", _subparts=[attachment, html, MIMEText("code 654321", "plain")])
    raw = msg.as_bytes().replace(b"\n", b"\r\n")
    assert len(raw) > 1_000_000
    mail = parse_message(raw)
    assert mail.text == "code 654321"
    assert mail.html.endswith("code 123456</p>")


def _nested(depth: int, body: bytes) -> bytes:
    head = b"From: a@b.example\r\nSubject: deep\r\n"
    levels = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    return head + levels + b"Content-Type: text/plain\r\n\r\n" + body


HOSTILE = {
    "deep nesting": _nested(5_000, b"code 123456\r\n"),
    "nesting and short lines": _nested(900, b"\n" * 1_000_000),
    "depth 50 and short lines": _nested(50, b"\r" * 1_000_000),
    "many tiny parts": b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    + b"--b\r\n\r\nx\r\n" * 80_000,
    "a huge header": b"Subject: " + b"=?utf-8?q?=C3=A9?= " * 50_000 + b"\r\n\r\nbody",
    "NUL bytes": b"\x00" * 1_000_000,
    "nested messages": b"Subject: s\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * 20_000,
    "multipart/ everywhere": b"Subject: x\r\n\r\n" + b"multipart/\r\n" * 120_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_structure_is_cheap(name: str) -> None:
    """Mails built to make the parser slow (nesting x lines, part floods) parse in under 0.5 s."""
    start = time.perf_counter()
    mail = parse_message(HOSTILE[name])
    assert time.perf_counter() - start < 0.5  # ~0.02 s here; unbounded, nesting took 5 s to minutes
    check_types(mail)


def test_absurd_nesting_keeps_the_headers() -> None:
    """When nesting defeats the parser's recursion, the top-level headers are still read."""
    mail = parse_message(HOSTILE["nested messages"])
    assert (mail.subject, mail.text) == ("s", "")


def test_non_bytes_and_wrong_types_never_raise() -> None:
    """bytearray and memoryview are accepted; a non-bytes argument gives an empty result."""
    raw = b"Subject: s\r\n\r\ncode 1\r\n"
    assert parse_message(bytearray(raw)).text == "code 1\n"  # type: ignore[arg-type]
    assert parse_message(memoryview(raw)).text == "code 1\n"  # type: ignore[arg-type]
    assert parse_message("not bytes").text == ""  # type: ignore[arg-type]


def _seeds() -> list[bytes]:
    nested = MIMEMultipart(
        "mixed",
        _subparts=[
            MIMEMultipart(
                "alternative",
                _subparts=[MIMEText("código 123456", "plain"), MIMEText("<b>123456</b>", "html")],
            ),
            MIMEMessage(MIMEText("forwarded", "plain")),
            MIMEImage(PNG, "png"),
        ],
    )
    nested["Subject"] = Header("Código 123456", "utf-8")  # type: ignore[assignment]  # as above
    return [
        mime("Code 482913", "Your code: 482913\n", "<p>482913</p>"),
        mime(SAMPLES["iso-2022-jp"], SAMPLES["iso-2022-jp"], None, charset="iso-2022-jp"),
        mime("Ваш код", SAMPLES["koi8-r"], "<p>код</p>", charset="koi8-r", cte="base64"),
        nested.as_bytes().replace(b"\n", b"\r\n"),
        b"From: x@y.z\r\nSubject: =?utf-8?b?w6k=?=\r\n\r\nplain 123456\r\n",
    ]


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        at = rng.randrange(len(data) + 1)
        if op == 0:
            del data[at:]  # truncate
        elif op == 1 and data:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 2:  # duplicate a boundary or any line
            start = data.find(b"--", at)
            end = data.find(b"\n", start) + 1 if start >= 0 else 0
            data[at:at] = data[start:end] * rng.randint(1, 20) if end > 0 else b"--\r\n"
        elif op == 3:
            data[at:at] = b"\x00" * rng.randint(1, 30)
        elif op == 4:
            data[at:at] = rng.randbytes(rng.randint(1, 300))
        elif op == 5:
            del data[at : at + rng.randint(1, 200)]
        else:
            data[at:at] = rng.choice([b"=?", b"?=", b"\r", b"\n\n", b"=", b"=?utf-8?b?", b"<>"])
    return bytes(data)


def test_fuzz_never_raises() -> None:
    """Thousands of mangled real mails and random byte strings parse, without error, to str."""
    rng = random.Random(20240611)
    seeds = _seeds()
    for _ in range(5_000):
        check_types(parse_message(_mutate(rng, rng.choice(seeds))))
    for _ in range(1_000):
        check_types(parse_message(rng.randbytes(rng.randint(0, 3_000))))


# --- the shared corpus ------------------------------------------------------------------------


def _corpus() -> list[Any]:
    """One param per corpus mail, or one placeholder when ../shared is absent."""
    if not CORPUS.is_file():
        return [pytest.param(None, id="corpus-missing")]  # the test skips, or fails in CI
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]
    assert len(rows) >= 50
    return [pytest.param(row, id=row["id"]) for row in rows]


def _encodes(charset: str, *texts: str) -> bool:
    try:
        return all(t.encode(charset).decode(charset) == t for t in texts)
    except UnicodeError:
        return False


@pytest.mark.parametrize("row", _corpus())
def test_corpus_round_trip(row: dict[str, Any]) -> None:
    """Corpus mails sent in QP and base64, in every charset that holds them, parse back intact."""
    need_shared(CORPUS)
    subject, text, html = row["subject"], row["text"], row.get("html") or None
    charsets = [cs for cs in CORPUS_CHARSETS if _encodes(cs, subject, text, html or "")]
    assert "utf-8" in charsets
    for charset in charsets:
        for cte in ("quoted-printable", "base64"):
            mail = parse_message(mime(subject, text, html, charset=charset, cte=cte))
            where = f"{charset}/{cte}"
            assert mail.subject == " ".join(subject.split("\n")).strip(), where
            assert mail.text == lines(text), where
            assert mail.html == lines(html or ""), where
            assert (mail.sender, mail.message_id) == ("no-reply@example.com", "abc.123@example.com")


# --- forwarded as an attachment (gateway.services.forwarded) ------------------------------


def _attaching(inner: bytes, container: bytes = b"multipart/mixed") -> bytes:
    return (
        b"From: alice@corp.example\r\nSubject: Fwd: see attached\r\nContent-Type: "
        + container
        + b"; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        + b"--z\r\nContent-Type: message/rfc822\r\n\r\n"
        + inner
        + b"\r\n--z--\r\n"
    )


def test_a_delivery_report_is_not_unwrapped() -> None:
    """Only multipart/mixed forwards: a report quoting a message is read as itself."""
    original = mime("Your code", "code 123456", sender="no-reply@service.example")
    forwarded = message_from_mail(_attaching(original), "")
    assert (forwarded.subject, forwarded.text) == ("Your code", "code 123456")
    assert forwarded.sender == "alice@corp.example"
    report = message_from_mail(_attaching(original, b"multipart/report"), "")
    assert (report.subject, report.text) == ("Fwd: see attached", "see attached")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_attached_messages_are_cheap(name: str) -> None:
    """A hostile mail forwarded as an attachment costs about as much as the mail itself."""
    start = time.perf_counter()
    message = message_from_mail(_attaching(HOSTILE[name]), "")
    assert time.perf_counter() - start < 1.0
    assert message.sender == "alice@corp.example"


@pytest.mark.parametrize(
    "sender",
    [
        "=?utf-8?q?x=0D=0A?=victim@bank.example",
        "<=?utf-8?q?=0D=0A?=@bank.example>",
        "Bank <=?utf-8?q?victim=40bank.example=0D=0A?=@evil.example>",
        "a@=?utf-8?q?bank.example=0D=0A?=",
    ],
)
def test_an_encoded_word_in_the_from_address_is_no_sender(sender: str) -> None:
    """An RFC 2047 encoded word inside the From address (where it has no meaning) gives no
    sender and no domain: decoded later it would read as another address and a line break."""
    raw = f"From: {sender}\r\nSubject: hi\r\n\r\nYour code is 123456\r\n".encode()
    mail = parse_message(raw)
    assert (mail.sender, mail.sender_domain) == ("", "")


def test_an_encoded_display_name_keeps_the_real_address() -> None:
    """An encoded word in the display name, even one that decodes to an address and CRLF,
    leaves the address in angle brackets as the sender."""
    raw = (
        b"From: =?utf-8?q?victim=40bank.example=0D=0A?= <attacker@evil.example>\r\n"
        b"Subject: hi\r\n\r\nYour code is 123456\r\n"
    )
    mail = parse_message(raw)
    assert (mail.sender, mail.sender_domain) == ("attacker@evil.example", "evil.example")
