"""Tests for gateway.extraction (extractor, htmltext, index): corpus, cases, fast paths, CLI."""

from __future__ import annotations

import io
import json
import random
import re
import subprocess
import sys
import time
import unicodedata
from typing import Any

import pytest

from gateway.errors import Invalid
from gateway.extraction import extractor as extract
from gateway.extraction import htmltext
from gateway.extraction import lexicon as lex
from gateway.extraction.extractor import (
    compile_custom_pattern,
    extract_code,
    extract_with_pattern,
    run_jsonl,
)
from gateway.extraction.htmltext import blank_links, html_to_text, visible_text
from gateway.extraction.index import MessageIndex, RoleMemo

from .helpers import ROOT, SHARED, need_shared

CORPUS = SHARED / "corpus"
CORPUS_FILES = ("otp_dev.jsonl", "email_dev.jsonl")
CORPUS_PATHS = [CORPUS / name for name in CORPUS_FILES]
MIN_EXACT = 0.97
MAX_WRONG = 0.01


def _extract(row: dict[str, Any], memo: RoleMemo | None = None) -> str | None:
    return extract_code(
        channel=row["channel"],
        subject=row.get("subject") or "",
        text=row.get("text") or "",
        html=row.get("html") or "",
        memo=memo,
    )


# --- the shared corpus -----------------------------------------------------------------


def test_corpus_accuracy() -> None:
    """On the developer corpus at least 97% of codes are exact and at most 1% are wrong."""
    need_shared(*CORPUS_PATHS)
    totals = {"n": 0, "exact": 0, "wrong": 0, "missed": 0}
    report = []
    for name in CORPUS_FILES:
        counts = {"n": 0, "exact": 0, "wrong": 0, "missed": 0}
        wrong_ids, missed_ids = [], []
        started = time.perf_counter()
        for line in (CORPUS / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            got, expected = _extract(row), row["expected"]
            counts["n"] += 1
            if got == expected:
                counts["exact"] += 1
            elif got is None:
                counts["missed"] += 1
                missed_ids.append(row["id"])
            else:  # a wrong code, or any code where there is none
                counts["wrong"] += 1
                wrong_ids.append(row["id"])
        per_message = (time.perf_counter() - started) / counts["n"] * 1000
        n = counts["n"]
        report.append(
            f"{name}: n={n} exact={counts['exact'] / n:.1%} wrong={counts['wrong'] / n:.1%} "
            f"missed={counts['missed'] / n:.1%} ({per_message:.2f} ms/message) "
            f"wrong={wrong_ids} missed={missed_ids}"
        )
        for key, value in counts.items():
            totals[key] += value
    n = totals["n"]
    exact, wrong, missed = totals["exact"] / n, totals["wrong"] / n, totals["missed"] / n
    report.append(f"combined: n={n} exact={exact:.1%} wrong={wrong:.1%} missed={missed:.1%}")
    print("\n".join(report))
    assert exact >= MIN_EXACT, "\n".join(report)
    assert wrong <= MAX_WRONG, "\n".join(report)


def test_remembered_word_roles_change_no_answer() -> None:
    """Word roles kept from earlier messages give the same answers as judging each afresh."""
    need_shared(*CORPUS_PATHS)
    rows = [
        json.loads(line)
        for name in CORPUS_FILES
        for line in (CORPUS / name).read_text(encoding="utf-8").splitlines()
    ]
    memo = RoleMemo()
    fresh = []
    for row in rows:
        memo.clear()
        fresh.append(_extract(row, memo))
    for row in rows:  # every word of every message is now remembered
        _extract(row, memo)
    assert [_extract(row, memo) for row in reversed(rows)] == fresh[::-1]


# --- codes found -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Your verification code is 482913.", "482913"),
        ("482913 is your Instagram code. Don't share it.", "482913"),
        ("Your code: 5WGU8G", "5WGU8G"),
        ("Your portal verification code is : jh7112", "jh7112"),
        ("Login Code\nG7K2P", "G7K2P"),
        ("Security Code: 9C494C\n\nSecurity code will expire in 2 minutes.", "9C494C"),
        ("Here is your one-time passcode:\n\n482913\n\nThis code expires in 15 minutes.", "482913"),
        ("Use 482913 to sign in to Slack. Expires in 10 minutes.", "482913"),
        ("Enter 678901 to proceed", "678901"),
        ("OTP for your mobile number for UPI is 00113303. Valid for 5 mins.", "00113303"),
        ("Dear Customer, 665825 is your OTP for a transaction of Rs 121.85 at Nike.", "665825"),
        ("Kod SMS do potwierdzenia przelewu na kwotę 150,00 PLN: 88213401", "88213401"),
    ],
)
def test_english_and_structure(text: str, code: str) -> None:
    """The code next to, after or under a word naming it is found, whatever the layout."""
    assert extract_code(channel="sms", text=text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # Real CJK messages use full-width punctuation; reading it is the point here.
        ("【京东】验证码：123456，您正在登录，若非本人操作，请勿泄露。", "123456"),  # noqa: RUF001
        ("您的验证码是 199035，10分钟内有效，请勿泄露", "199035"),  # noqa: RUF001
        ("【LINE】認証番号：482913 この番号を他人に教えないでください。", "482913"),  # noqa: RUF001
        ("[카카오톡] 인증번호 [123456]를 입력해주세요", "123456"),
        ("Код подтверждения: 1234. Никому не сообщайте код.", "1234"),
        ("Ihr Bestätigungscode lautet: 777315. Er läuft in 5 Minuten ab.", "777315"),
        ("Votre code de vérification est 482913.", "482913"),
        ("Tu código de WhatsApp: 748-201. No compartas este código.", "748201"),
        ("Il tuo codice di sicurezza è: 123456", "123456"),
        ("Seu código de verificação é 482913. Não compartilhe.", "482913"),
        ("Uw sms-code is: 481243. Deze vervalt over 20 minuten.", "481243"),
        ("Twój kod weryfikacyjny to 482913", "482913"),
        (
            "Doğrulama kodunuz : 259614 Bu mesaj 21/09/2026 13:21:23 itibariyle gönderilmiştir",
            "259614",
        ),
        ("رمز التحقق الخاص بك هو 123456", "123456"),
        ("קוד האימות שלך הוא 884213", "884213"),
        ("کد تایید شما: 55321", "55321"),
        ("आपका Signal सत्यापन कोड है: 832-985", "832985"),
        ("รหัส OTP ของคุณคือ 482913 (Ref: ABCD)", "482913"),
        ("Mã xác thực của bạn là 482913.", "482913"),
    ],
)
def test_languages(text: str, code: str) -> None:
    """Code words are recognised in many languages and scripts."""
    assert extract_code(channel="sms", text=text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("G-412157 is your Google verification code.", "412157"),
        ("123 456 is your Instagram code.", "123456"),
        ("Your Signal verification code: 337-337", "337337"),
        ("Hier ist dein Anmeldecode:\n\n58 21 90\n", "582190"),
        ("Your sign-in code is listed below.\n\nXPGS-STSW\n", "XPGSSTSW"),
        ("Your Yik Yak verification code: 7yjp0s", "7yjp0s"),
        ("Your code is \uff11\uff12\uff13\uff14\uff15\uff16", "123456"),  # full-width digits
    ],
)
def test_conventions(text: str, code: str) -> None:
    """Separators are removed, Google's G- is dropped, letters keep their case, digits fold."""
    assert extract_code(channel="sms", text=text) == code


@pytest.mark.parametrize(
    ("subject", "text", "html", "code"),
    [
        ("", "Your verification code is 1 2 3 4 5 6", "", "123456"),
        ("", "Ihr Anmeldecode:\n\n7  0  4  2  1  9\n", "", "704219"),
        (
            "Your sign-in code",
            "",
            "<p>Enter this code to sign in:</p><table><tr><td>4</td><td>8</td><td>2</td>"
            "<td>9</td><td>1</td><td>3</td></tr></table><p>It expires in 10 minutes.</p>",
            "482913",
        ),
        ("", "Your verification code is 1 2 3 4 5 6 7 8 9 0 1", "", None),  # too many digits
        ("", "Call 0 8 0 0 1 2 3 4 5 6 7 about your code", "", None),
        ("", "Your code is 4 8 2 9 1 3, for 2 5 items", "", "482913"),
    ],
)
def test_digits_spread_apart(subject: str, text: str, html: str, code: str | None) -> None:
    """A code written one digit at a time, or one digit per table cell, is read whole."""
    assert extract_code(channel="email", subject=subject, text=text, html=html) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Your verification code is: 7fK2pQ9xLm3Rt8Vb", "7fK2pQ9xLm3Rt8Vb"),
        (
            "Verification code:\n\nA7F2K9Q3L8M4R6T1\n\nOr click https://example.com/v?t=x1",
            "A7F2K9Q3L8M4R6T1",
        ),
        ("Your order number: AB12CD34EF56GH78", None),
        ("Your code: 7fK2pQ9xLm3Rt8Vb", None),  # no word says what for
        ("Session a1b2c3d4e5f6g7h8, verification code 482913", "482913"),
        # 16 random bytes in hexadecimal, 32 characters, as some systems give a code to type
        # or paste (a link holding it too); named as anything but a code to sign in with, none
        (
            "Email verification code: 46d13cf23a6c69c4f8a7eb11501509ed\n\nAlternatively you "
            "may click the following link:\n\nhttps://example.org/verify/46d13cf23a6c69c4f8a7eb11501509ed",
            "46d13cf23a6c69c4f8a7eb11501509ed",
        ),
        ("Your invitation code: 3f2a9c1d7e8b4a6f5c3d2e1f0a9b8c7d", None),
        ("Transaction code: 3f2a9c1d7e8b4a6f5c3d2e1f0a9b8c7d\nAmount: $20.00", None),
        ("Your new API token is 9f8e7d6c5b4a39281706f5e4d3c2b1a0. Keep it secret.", None),
        ("Commit 3f2a9c1d7e8b4a6f5c3d2e1f0a9b8c7d passed; verification code coverage 98%", None),
    ],
)
def test_long_tokens_named_plainly_as_a_code(text: str, code: str | None) -> None:
    """A token of 11 to 32 characters is the code only where a code word plainly names it."""
    assert extract_code(channel="email", text=text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Please enter code 548 on Zocdoc.", "548"),
        ("Your code: 548", "548"),
        ("Error code 404: try again", None),
        ("Room 548, code word below", None),
        ("Your verification code is 482913, it expires in 120 seconds", "482913"),
        ("Your code is 482913. Reply 123 for help", "482913"),
    ],
)
def test_three_digit_codes_right_after_a_code_word(text: str, code: str | None) -> None:
    """Three digits are a code only right after a word naming one, never elsewhere."""
    assert extract_code(channel="sms", text=text) == code


@pytest.mark.parametrize(
    "text",
    [
        "Your PIN is 4829 and your code is 731905",
        "Code for Alice: 482913\nCode for Bob: 731905",
    ],
)
def test_two_likely_codes_give_none_and_say_so(text: str) -> None:
    """When no value is clearly ahead of another, nothing is handed out: it is ambiguous."""
    decision = extract.decide(channel="sms", text=text)
    assert (decision.code, decision.outcome) == (None, "ambiguous")
    assert extract_code(channel="sms", text=text) is None


def test_webotp_line_wins() -> None:
    """An origin-bound WebOTP line names the code even when other numbers look likelier."""
    text = "Order 99887766 code 112233 was sent.\n\n@shop.example #554433"
    assert extract_code(channel="sms", text=text) == "554433"


# --- no code -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Your order #112-4839201-5528813 has shipped. Track: 1Z999AA10123456784",
        "Your verification is complete. Ref: 482913",
        "482913\nYour verification is complete",
        "Invoice INV-2026-0419 for EUR 1.240,00 is due on 15.10.2026.",
        "Rental expired! Return by 01:40 AM on 09/30. Need help? Text +1 (213) 928-7320",
        "code: 4155552671",
        "Purchase EUR 10.00 at LIDL with card ending 7305. Balance: 1.000,00 EUR.",
        "Use code SAVE20 for 20% off. Ends 23:59.",
        "Get 20% off with code SUMMER2024!",
        "Your tracking code is 12345678",
        "Meeting ID: 812 3456 7890 Passcode: 123456",
        "Thanks! Your booking is confirmed.\nConfirmation: 1234567890\nPIN: 0415 (Confidential)",
        "Verify at https://example.com/session/12345678",
        "Your verification code was sent to 7319042@acme.example.",
        "A failed login attempt from 198.51.100.23 on 11/7/26, 10:17 AM.",
        "Postal Code: 2000",
        "Use code 2024 for 20% off",
        "Call 0800 123 4567 for help with your account 12345678.",
        "Your Wi-Fi code for today: LOBBY2024",
        "Status of your verification: APPROVED",
        "",
    ],
)
def test_no_code(text: str) -> None:
    """Orders, amounts, dates, phones, links, promotions, meetings and notices give None."""
    assert extract_code(channel="sms", text=text) is None


def test_code_in_a_link_is_not_taken() -> None:
    """A code that appears only inside a URL is never returned."""
    text = "Confirm here: https://auth.example.com/verify?code=424682&flow=3c51acd4"
    assert extract_code(channel="email", text=text) is None


# --- e-mail parts ------------------------------------------------------------------------


def test_plain_text_preferred_over_html() -> None:
    """When the text part holds a code, the HTML part is not consulted."""
    html = "<p>Your verification code is <b>111111</b></p>"
    code = extract_code(channel="email", text="Your verification code is 222222", html=html)
    assert code == "222222"


def test_html_used_when_text_has_none() -> None:
    """The HTML part is read when the text part is empty or holds no code."""
    html = (
        "<html><head><style>.c{color:#a1b2c3}</style><title>Code 999999</title></head>"
        "<body><table><tr><td>Verification code</td><td><b>771203</b></td></tr></table>"
        "<p>&copy; 2025 Example Inc., 1600 Main St, 94043</p></body></html>"
    )
    assert extract_code(channel="email", html=html) == "771203"
    assert extract_code(channel="email", text="See the HTML part.", html=html) == "771203"


def test_subject_alone() -> None:
    """A code in the subject is found when the body has none."""
    assert extract_code(channel="email", subject="Your Apple ID Code is: 482913") == "482913"


def test_oversized_and_odd_input_is_fast_and_safe() -> None:
    """A megabyte of text and random Unicode never raise and stay fast."""
    rng = random.Random(7)
    alphabet = "0123456789 abcXYZ:-./#@\n验证码コード\u200b\u202e\uff10"
    started = time.perf_counter()
    assert extract_code(channel="sms", text="1234 5678 " * 100_000) is None
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(300)))
        extract_code(channel="email", subject=text[:50], text=text, html=f"<p>{text}</td>")
    assert time.perf_counter() - started < 5


SIGN_IN = """Hi there,

Someone is trying to sign in to your Example account from a new device.
Your verification code is:

    482913

The code expires in 10 minutes. If you didn't try to sign in, you can
ignore this email; your password is still safe. For help, visit
https://help.example.com/sign-in or reply to this message.

Sign-in details: Chrome on Windows, near Berlin, Germany (IP 203.0.113.42)
at 12:00 UTC on 27 November 2026.

Thanks,
The Example Accounts team

You received this mandatory service email to keep your account secure.
Example Inc., 1 Market St, San Francisco, CA 94105, USA
"""
SIGN_IN_HTML = (
    "<!DOCTYPE html><html><head><title>Your Example sign-in code</title>"
    "<style>td{font-family:Arial;color:#333}</style></head><body><table role='presentation'>"
    + "".join(
        f'<tr><td style="padding:8px">{part.replace(chr(10), "<br>")}</td></tr>'
        for part in SIGN_IN.replace("    482913", "<b>482913</b>").split("\n\n")
    )
    + "</table></body></html>"
)


_FOOTERS = {  # (subject, text): the code a reader would type, or None
    ("Ihr Anmeldecode", "Hallo Max,\n\nIhr Bestätigungscode lautet: 731904\n\nDer Code ist "
     "15 Minuten gültig.\n\nAnmeldung am 03.11.2026 um 14:22 Uhr von 198.51.100.7 (Firefox).\n\n"
     "Ihre Bestellung 4839201 über 49,99 € ist versandt.\n\nBeispiel GmbH · Berlin\n"): "731904",
    ("Your receipt", "Thanks for your payment of USD 120.00 on 2026-11-27.\nInvoice INV-2026-0419, "
     "order 55412903.\nYour one-time passcode for the payment confirmation is 60 21 84.\n"
     "Payment method: Visa ending 7305\n"): "602184",
    ("Google verification code", "G-412157 is your Google verification code.\n\nDon't share it."
     "\n\nGoogle LLC, 1600 Amphitheatre Parkway, CA 94043\n© 2026 Google\n"): "412157",
    ("Order #112-4839201-5528813 shipped", "Hello,\n\nYour order 4839201 of 2 items totalling "
     "$1,249.99 has shipped on Nov 27, 2026.\nTracking: 1Z999AA10123456784\n\nQuestions? Call "
     "1-800-555-0199.\n\nExample Store, 500 Oak Ave, Springfield, IL 62704\n"): None,
    ("New sign-in to your account", "We noticed a new sign-in to your account.\n\nWhen: 27 "
     "November 2026, 12:00 UTC\nIP address: 203.0.113.42\nLocation: Berlin, Germany\n\nNot you? "
     "Reset your password at https://example.com/reset.\n\n© 2026 Example Inc. · CA 94105\n"): None,
    ("Black Friday: 20% off", "Hi Alex,\n\nUse code SAVE20 at checkout for 20% off your next "
     "order (min. $49.99).\nOffer ends 30/11/2026 at 23:59. Order 55412903 qualifies too.\n\n"
     "Shop now: https://shop.example.com/bf?utm=1234\n\nExample Store · IL 62704\n"): None,
}  # fmt: skip


@pytest.mark.parametrize(
    ("subject", "text", "html", "code"),
    [
        ("Your Example sign-in code", SIGN_IN, "", "482913"),
        ("Your Example sign-in code", "", SIGN_IN_HTML, "482913"),
        ("Your Example sign-in code", SIGN_IN, SIGN_IN_HTML, "482913"),
        *((subject, text, "", code) for (subject, text), code in _FOOTERS.items()),
    ],
)
def test_realistic_emails(subject: str, text: str, html: str, code: str | None) -> None:
    """The sign-in code is found among dates, IPs, prices and order numbers, or none is."""
    assert extract_code(channel="email", subject=subject, text=text, html=html) == code


# --- html_to_text ------------------------------------------------------------------------


def test_html_to_text_drops_invisible_parts() -> None:
    """Style, script, head, title and comments (Outlook's conditionals too) are not text."""
    html = (
        "<html><head><title>T</title><style>p{color:#fff}</style></head><body>"
        "<!--[if mso]><p>mso only</p><![endif]--><script>var x = 1;</script>"
        "<p>Visible</p></body></html>"
    )
    assert html_to_text(html) == "Visible"


def test_html_to_text_blocks_cells_and_entities() -> None:
    """Blocks and <br> break lines, table cells stay apart, entities are decoded."""
    html = "<div>One<br>Two</div><table><tr><td>A</td><td>B&amp;C</td></tr></table><p>x&nbsp;y</p>"
    assert html_to_text(html) == "One\nTwo\n\nA\tB&C\n\nx y"


def test_html_to_text_never_raises() -> None:
    """Malformed and random markup yields text without an exception."""
    rng = random.Random(3)
    pieces = ["<", ">", "</", "<p", "<td>", "<!--", "-->", "<![CDATA[", "]]>", "&", "&#", ";"]
    pieces += ["<style>", "</style>", "<script>", "<head>", "<br/>", "x", " ", '"', "'", "=", "a"]
    for _ in range(500):
        html = "".join(rng.choice(pieces) for _ in range(rng.randrange(60)))
        assert isinstance(html_to_text(html), str)
    assert html_to_text("<p>unclosed <b>bold <td>cell") == "unclosed bold\tcell"


def test_visible_text_folds_and_drops_invisible_characters() -> None:
    """Full-width digits fold to ASCII and zero-width or bidi marks disappear."""
    assert visible_text("\uff11\uff12\u200b\uff13\u202b\uff14\r\n") == "1234\n"


# --- the fast paths give what the plain ways give ---------------------------------------
#
# htmltext and extract_lexicon take shortcuts for the common case (HTML read by a
# pattern, ASCII text, links found from anchors, words looked up in tables); each
# is checked here against the plain way on random input.

_PIECES = [
    "<p>", "</p>", "<td class='x'>", "</td>", "<tr>", "<br>", "<br/>", "<div id=a>", "</div>",
    "<span>", "<style>p{}</style>", "<script>if(a<b)x()</script>", "<title>T</title>",
    "<head>", "</head>", "<body>", "<!-- c -->", "<!---->", "<!DOCTYPE html>", "<?xml x?>",
    "<a href=\"https://a.b/?c=1&amp;d\">", "</a>", "<img alt=\"<x>\"/>", "<P>", "</TD>",
    "<", "< 3", "</ p>", "<!-->", "<![CDATA[x]]>", "<a b=c/>", "<textarea>", "<title><b>",
    "&amp;", "&nbsp;", "&#49;", "&am", "p;", " ", "  ", "\n", "\t", "\r", "\xa0", "\u200b",
    "code", "482913", "é", "İ", "ﬁ", "\uff11\uff12", "\uff0c", "x", "·",
]  # fmt: skip


def test_html_fast_reader_agrees_with_html_parser() -> None:
    """Markup the fast reader takes gives the events ``html.parser`` gives, in order."""
    rng, taken = random.Random(11), 0
    for _ in range(3000):
        html = "".join(rng.choice(_PIECES) for _ in range(rng.randrange(30)))
        parts = htmltext._collect_fast(html)
        if parts is not None:
            taken += 1
            parser = htmltext._TextCollector()
            parser.feed(html)
            parser.close()
            assert "".join(parts) == "".join(parser.parts), html
    assert taken > 300  # (and it is taken often)


def _plain_visible_text(text: str) -> str:
    text = re.sub("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]", "", text)
    text = unicodedata.normalize("NFKC", text.replace("\uff0c", "、"))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r" *[^\S\n ][^\S\n]*| {2,}", " ", text)


def _plain_tidy(raw: str) -> str:
    lines = []
    for line in raw.replace("\r", "\n").split("\n"):
        lines.append(re.sub(r" ?\t[\t ]*", "\t", re.sub(r"[^\S\n\t]+", " ", line)).strip(" \t"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _plain_blank_links(doc: str) -> str:
    doc = htmltext._URLS.sub(" ", doc)
    return htmltext._DOMAINS.sub(" ", htmltext._EMAILS.sub(" ", doc))


def test_text_shortcuts_agree_with_the_plain_way() -> None:
    """Visible text, white space, links: the shortcuts give what whole-text patterns give."""
    rng = random.Random(5)
    pieces = [*_PIECES, "http://", "://", "www.", "@", "a.com", "e.g", "x" * 70, "\x0b", "\u3000"]
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(20)))
        assert visible_text(text) == _plain_visible_text(text), text
        assert htmltext._tidy(text) == _plain_tidy(text), text
        assert blank_links(text) == _plain_blank_links(text), text


def _soup(rng: random.Random) -> str:
    words = [w for w in lex.CONNECTOR + lex.ENTRY_VERB if w.isascii()] + [
        "code", "codes", "pin", "sign in", "sign-in", "log in", "one-time", "verification",
        "order", "account", "to", "at", "no.", "tracking code", "postcode", "Sicherheitscode",
        "kundennummer", "telefonnr", "20% off", "save 30", "t & c", "a/c", "sms to", "meeting",
        "booking", "2fa", "482913", "12 34 56", "\n", ". ", ": ", "·", "USD", "login\ncode",
    ]  # fmt: skip
    return " ".join(rng.choice(words) for _ in range(rng.randrange(40)))


def _roles(pattern: re.Pattern[str], low: str, start: int, end: int) -> tuple[str, ...]:
    spans = pattern.match(low, start).regs[1:]  # type: ignore[union-attr]
    return tuple(role for role, s in zip(lex.ROLE_NAMES, spans, strict=True) if s[1] == end)


def test_word_shortcuts_agree_with_the_plain_way() -> None:
    """Plain-text patterns, the role table and identifier look-ups find what WORD_RE finds."""
    rng = random.Random(7)
    for _ in range(1500):
        doc = _soup(rng)
        low = doc.lower()
        plain = [(m.span(), m.group()) for m in lex.WORD_RE.finditer(low)]
        roles = {span: _roles(lex.ROLE_RE, low, *span) for span, _ in plain}
        fast = [((m.start(), m.end() - 1), m.group(1)) for m in lex.ASCII_WORDS.finditer(" " + low)]
        assert set(fast) <= set(plain), doc
        assert all(w in lex.ONLY_IDENTIFIERS for _, w in set(plain) - set(fast)), doc
        for span, word in plain:
            assert _roles(lex.ASCII_ROLE_RE, low, *span) == roles[span], (doc, word)
            assert lex.FIXED_ROLES.get(word, roles[span]) == roles[span], (doc, word)
        index = MessageIndex(doc)
        identifiers = [s for s, _ in plain if "identifier" in roles[s]]
        identifiers = [s for s in identifiers if not index.in_keyword(*s, False)]
        for pos in range(0, len(doc) + 1, 7):
            before = [i for i in identifiers if i[1] <= pos]
            want = before[-1] if before and before[-1][0] >= pos - 30 else None
            assert index.identifier_before(pos) == want, (doc, pos)


def test_unspaced_words_all_have_letters_beyond_ascii() -> None:
    """Text whose letters are all ASCII cannot hold an unspaced word, so it is not searched."""
    letter = re.compile(r"[^\W\d_\x00-\x7f]")
    unspaced = [w for _, words in lex.ROLES.values() for w in words] + ["کد"]
    assert all(letter.search(w) for w in unspaced)


def test_best_skips_only_candidates_that_cannot_win() -> None:
    """The best value and score, and whether another comes close, are those of scoring all."""
    rng = random.Random(3)
    docs = [_soup(rng) for _ in range(400)] + [SIGN_IN]
    if (CORPUS / "otp_dev.jsonl").is_file():
        rows = (CORPUS / "otp_dev.jsonl").read_text(encoding="utf-8").splitlines()
        docs += [json.loads(line)["text"] for line in rows]
    close = 0
    for doc in (blank_links(visible_text(d)) for d in docs):
        ranked = extract._rank(doc)
        best = extract._best(doc)
        if not ranked:
            assert best is None, doc
            continue
        assert best is not None, doc
        value, score, runner, link = best
        assert (value, score, link) == (ranked[0].value, ranked[0].score, ranked[0].link), doc
        others = [s.score for s in ranked if s.value != value]
        full = max(others, default=float("-inf"))
        # A skipped candidate is more than MARGIN behind: the verdict is the same.
        assert (runner > score - extract.MARGIN) == (full > score - extract.MARGIN), doc
        close += full > score - extract.MARGIN
    assert close  # some messages do have a close second


# --- a credential's own pattern --------------------------------------------------------


def test_custom_pattern_group_or_whole_match() -> None:
    """The capture group, or else the whole match, is the code, exactly as written."""
    grouped = compile_custom_pattern(r"(?i)ref[:\s]{0,3}([A-Z]{3}-\d{3})")
    assert extract_with_pattern(grouped, "Login ref QXZ-123", "") == "QXZ-123"
    whole = compile_custom_pattern(r"[A-Z]{2}\d{4}")
    assert extract_with_pattern(whole, "Code AB1234", "") == "AB1234"
    assert extract_with_pattern(whole, "nothing", "here either") is None


def test_custom_pattern_reads_html_as_visible_text() -> None:
    """An HTML body handed over as text is matched on what a reader sees."""
    p = compile_custom_pattern(r"code: (\d{6})")
    assert extract_with_pattern(p, "", "<p>Your code: <b>482913</b></p>") == "482913"


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "non-empty"),
        ("a" * 201, "200 characters"),
        ("(unclosed", "not a valid regular expression"),
        (r"(\d{3})-(\d{3})", "one capture group"),
        (r"(a+)+b", "repeat inside a repeat"),
        (r"(?:\d{1,4})*x", "repeat inside a repeat"),
        (r"(\w)\1", "backreference"),
        (r"(a)?(?(1)b|c)", "conditional"),
        (r"\d+\d+\d+x", "too many ways"),
        (r"code:\s*(\d+)", "too many ways"),
        (r"(a|aa){0,40}b", "too many ways"),
        (r"x*", "empty string"),
    ],
)
def test_custom_pattern_rejected(pattern: str, reason: str) -> None:
    """Unsafe or unusable patterns raise Invalid with a message that says why."""
    with pytest.raises(Invalid, match=reason):
        compile_custom_pattern(pattern)


def test_custom_pattern_runs_in_bounded_time() -> None:
    """The most ambiguous accepted patterns on hostile input finish quickly."""
    hostile = [
        (r"\d{0,31}\d{0,31}x", "1" * 50_000),
        (
            r"(?:\d|\d)(?:\d|\d)(?:\d|\d)(?:\d|\d)(?:\d|\d)(?:\d|\d)(?:\d|\d)(?:\d|\d)x",
            "1" * 50_000,
        ),
        (r"(\w+)\W{0,3}x", "a" * 50_000),
    ]
    for pattern, text in hostile:
        p = compile_custom_pattern(pattern)
        started = time.perf_counter()
        assert extract_with_pattern(p, text[:1000], text) is None
        assert time.perf_counter() - started < 1.0, pattern


# --- otpgate extract ---------------------------------------------------------------------


class _FlushCounter(io.StringIO):
    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_run_jsonl_answers_each_line_in_order() -> None:
    """One result line per input line, in order, flushed each time, blank lines skipped."""
    lines = [
        {"id": "a", "channel": "sms", "text": "Your code is 482913"},
        {"id": 2, "channel": "email", "subject": "Hello", "text": "No code here."},
        {"id": "c", "channel": "email", "html": "<p>Your login code:</p><p>771203</p>"},
    ]
    stdin = io.StringIO("\n".join(json.dumps(x) for x in lines[:2]) + "\n\n" + json.dumps(lines[2]))
    stdout = _FlushCounter()
    assert run_jsonl(stdin, stdout) == 0
    out = [json.loads(x) for x in stdout.getvalue().splitlines()]
    assert out == [
        {"id": "a", "code": "482913", "link": None},
        {"id": 2, "code": None, "link": None},
        {"id": "c", "code": "771203", "link": None},
    ]
    assert stdout.flushes >= 3


@pytest.mark.parametrize(
    ("line", "ident"),
    [
        ("{not json 482913", None),
        ('["a list", "482913"]', None),
        ('{"channel": "sms", "text": "code 482913"}', None),
        ('{"id": true, "channel": "sms", "text": "code 482913"}', None),
        ('{"id": NaN, "channel": "sms", "text": "code 482913"}', None),
        ('{"id": "x", "channel": "fax", "text": "code 482913"}', "x"),
        ('{"id": "x", "channel": "sms", "text": 482913}', "x"),
        ('{"id": 7, "channel": "sms", "text": 0}', 7),
    ],
)
def test_run_jsonl_malformed_line(line: str, ident: str | int | None) -> None:
    """A malformed line keeps the caller's id when it had a usable one, gives a null code and
    a short reason, and the next line runs."""
    stdin = io.StringIO(line + "\n" + json.dumps({"id": "ok", "channel": "sms", "text": "x"}))
    stdout = io.StringIO()
    assert run_jsonl(stdin, stdout) == 0
    first, second = (json.loads(x) for x in stdout.getvalue().splitlines())
    assert first["id"] == ident and first["code"] is None and first["link"] is None
    assert first["error"] and "482913" not in first["error"]
    assert second == {"id": "ok", "code": None, "link": None}


def test_readme_explain_example_is_what_the_command_prints() -> None:
    """The README's ``otpgate extract --explain`` example is run: its output is the command's."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- explain-example -->", 1)[1].split("```console\n", 1)[1]
    block = block.split("\n```", 1)[0]
    command, rest = block.split("\n", 1)
    assert command == "$ otpgate extract --explain <<'EOF'"
    given, shown = rest.split("\nEOF\n", 1)
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "extract", "--explain"],
        input=given + "\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    printed = [json.loads(line) for line in run.stdout.splitlines()]
    assert printed == [json.loads(line) for line in shown.splitlines()]
    assert {p["outcome"] for p in printed} == {"code", "ambiguous"}


def test_explain_lists_candidates_and_plain_output_stays_as_it_was() -> None:
    """``--explain`` adds outcome, reason and candidates; without it lines keep three keys."""
    line = json.dumps({"id": 1, "channel": "sms", "text": "Order 4839201: your code is 482913"})
    plain, explained = io.StringIO(), io.StringIO()
    run_jsonl(io.StringIO(line), plain)
    run_jsonl(io.StringIO(line), explained, explain=True)
    assert json.loads(plain.getvalue()) == {"id": 1, "code": "482913", "link": None}
    out = json.loads(explained.getvalue())
    assert (out["code"], out["outcome"]) == ("482913", "code")
    assert [c["value"] for c in out["candidates"]] == ["482913", "4839201"]
    assert out["candidates"][0]["score"] > out["candidates"][1]["score"]
    assert "482913" not in out["reason"]  # the reason says why, the code is in "code"


def test_extract_help_names_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """`otpgate extract --help` names every input and output field and the error line."""
    from gateway.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["extract", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for field in ("id", "channel", "subject", "text", "html", "code", "link", "error"):
        assert re.search(rf"\b{field}\b", out.partition("input, one object")[2]), field
    assert '"sms" or "email"' in out


def test_dotted_runs_stay_linear() -> None:
    """50 KB of "a.a.a..." is read in linear time (a guard against a stall, not a speed goal)."""
    import time

    started = time.perf_counter()
    assert extract_code(channel="sms", text="a." * 25_000) is None
    assert time.perf_counter() - started < 5.0  # it took 22 s when it was quadratic


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # The message writes an accent the word list does not ("kòd"), or drops one it has.
        ("Kòd verifikasyon ou an se 482913.", "482913"),
        ("Votre code de securite :\n\nQZNT-FHTK\n\nMerci.", "QZNTFHTK"),
        ("Codul de conectare:\n\nNBSF-FJPN", "NBSFFJPN"),
    ],
)
def test_words_are_found_with_or_without_accents(text: str, code: str) -> None:
    assert extract_code(channel="email", text=text) == code


@pytest.mark.parametrize(
    ("subject", "text", "code"),
    [
        # A letters-only code needs a word saying what it is for: signing in, resetting...
        ("Giriş Kodu", "Giriş kodunuz:\n\nTBKH-XLVV\n\nTeşekkürler!", "TBKHXLVV"),
        ("Kirish Kodi", "Kirish kodingiz quyida keltirilgan.\n\nFDQR-HPKF", "FDQRHPKF"),
        ("密码重置代码", "您的密码重置代码如下所示。\n\nTZBV-MXPZ\n\n谢谢。", "TZBVMXPZ"),
        ("登入代碼", "您的登入代碼如下所列：\n\nCNBD-RSHH", "CNBDRSHH"),  # noqa: RUF001
        ("Kód pro obnovení hesla", "Váš kód pro obnovení hesla:\n\nQPBN-PNMW", "QPBNPNMW"),
        ("パスワード再設定コード", "パスワード再設定コード:\n\nRMQG-SCPQ", "RMQGSCPQ"),
        # ...or the head of the compound code word says it ("bekræftelseskode").
        ("", "Din emailbekræftelseskode er angivet nedenfor.\n\nKDFW-PLMB\n\nTak.", "KDFWPLMB"),
    ],
)
def test_letter_codes_named_for_signing_in_resetting_confirming(
    subject: str, text: str, code: str
) -> None:
    assert extract_code(channel="email", subject=subject, text=text) == code


@pytest.mark.parametrize(
    "text",
    [
        "Váš slevový kód je 482913, platí do neděle.",  # a discount code (Czech)
        "Alennuskoodisi on 482913, voimassa sunnuntaihin.",  # (Finnish, a compound)
        "Je kortingscode is 482913. Geldig tot zondag.",  # (Dutch, a compound)
        "Κωδικός παραγγελίας 48291367",  # an order's code (Greek)
        "Kod narudžbe 48291367 je poslan.",  # (Croatian)
    ],
)
def test_discount_and_order_codes_in_more_languages_give_none(text: str) -> None:
    assert extract_code(channel="sms", text=text) is None


@pytest.mark.parametrize(
    "text",
    [
        # A number to send a message to, however a code word leads to it.
        "To verify your entry, text the password SUN to 85432 now.",
        "Send the word PIN to 64321 to confirm your subscription.",
        # An identifier named a code, in an offer.
        "Your statement shows 500 unredeemed points. Identifier Code: 51234. Expires 01/12.",
    ],
)
def test_short_codes_and_identifier_codes_give_none(text: str) -> None:
    assert extract_code(channel="sms", text=text) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # A code word naming the number plainly still wins beside a "text ... to" sentence,
        ("Your verification code is 482913. Do not text it to anyone.", "482913"),
        # and "identifier" negates only the code word right after it.
        ("Your new identifier binding code is 089069. It expires in 10 minutes.", "089069"),
    ],
)
def test_codes_beside_short_code_and_identifier_words(text: str, code: str) -> None:
    assert extract_code(channel="sms", text=text) == code


@pytest.mark.parametrize(
    "text",
    [
        "ನಿಮ್ಮ ಪರಿಶೀಲನಾ ಕೋಡ್ 482913 ಆಗಿದೆ",  # Kannada
        "നിങ്ങളുടെ സ്ഥിരീകരണ കോഡ് 482913 ആണ്",  # Malayalam
        "તમારો વેરિફિકેશન કોડ 482913 છે",  # Gujarati
        "ਤੁਹਾਡਾ ਪੁਸ਼ਟੀਕਰਨ ਕੋਡ 482913 ਹੈ",  # Punjabi
        "ඔබගේ සත්‍යාපන කේතය 482913 වේ",  # Sinhala
        "លេខកូដផ្ទៀងផ្ទាត់របស់អ្នកគឺ 482913",  # Khmer
        "ລະຫັດຢືນຢັນຂອງທ່ານແມ່ນ 482913",  # Lao
        "သင်၏ အတည်ပြုကုဒ်မှာ 482913 ဖြစ်သည်",  # Burmese
        "የማረጋገጫ ኮድዎ 482913 ነው",  # Amharic
    ],
)
def test_code_words_in_more_scripts(text: str) -> None:
    assert extract_code(channel="sms", text=text) == "482913"


@pytest.mark.parametrize(
    "text",
    [
        "Kata laluan sekali guna anda ialah 482913",  # Malay
        "Jūsų slaptažodis: 482913",  # Lithuanian
        "Jūsu vienreizējā parole: 482913",  # Latvian
        "Teie ühekordne parool: 482913",  # Estonian
        "Ваша лозинка за пријаву: 482913",  # Serbian
        "Fjalëkalimi juaj i njëhershëm: 482913",  # Albanian
        "Birdəfəlik şifrə: 482913",  # Azerbaijani
        "Lykilorðið þitt: 482913",  # Icelandic
        "Eich cyfrinair: 482913",  # Welsh
        "Zure pasahitza: 482913",  # Basque
        "O teu contrasinal: 482913",  # Galician
        "La teva contrasenya: 482913",  # Catalan
        "Nenosiri lako: 482913",  # Swahili
        "Jou wagwoord: 482913",  # Afrikaans
        "Votre jeton : 482913",  # French (a token)
        "Jetonunuz: 482913",  # Turkish
        "Το διακριτικό σας: 482913",  # Greek  # noqa: RUF001
        "आपका टोकन: 482913",  # Hindi
        "আপনার টোকেন: 482913",  # Bengali
        "توکن شما: 482913",  # Persian
        "האסימון שלך: 482913",  # Hebrew
        "โทเค็นของคุณ: 482913",  # Thai
        "உங்கள் சரிபார்ப்பு குறியீட்டை உள்ளிடவும்: 482913",  # Tamil, inflected
        "ଆପଣଙ୍କ କୋଡ: 482913",  # Odia
        "توهان جو ڪوڊ: 482913",  # Sindhi
        "Сіздің құпия сөзіңіз: 482913",  # Kazakh
        "Таны нууц үг: 482913",  # Mongolian  # noqa: RUF001
        "თქვენი პაროლი: 482913",  # Georgian
        "Ձեր գաղտնաբառը: 482913",  # Armenian
        "ពាក្យសម្ងាត់របស់អ្នក: 482913",  # Khmer
        "ඔබගේ මුරපදය: 482913",  # Sinhala
        "Tín váttanarkota: 482913",  # Faroese
        "Codicem tuum: 482913",  # Latin
        "Κώδικας πιστοποίησης: 482913",  # Greek, capitalised
        "Šifra za autentifikaciju: 482913",  # Croatian
        "El vostre testimoni és 482913",  # Catalan (a token)
        "Mã thông báo của bạn là 482913",  # Vietnamese (a token)
        "Din sjetong er 482913",  # Norwegian (a token)
    ],
)
def test_passwords_and_tokens_in_more_languages(text: str) -> None:
    """Words for password, one-time password and token in the most used languages."""
    assert extract_code(channel="sms", text=text) == "482913"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # A compound right after the code word says what it is for (Swedish, German, Dutch).
        ("Din kod för lösenordsåterställning anges nedan.\n\nFPNB-FSPS", "FPNBFSPS"),
        ("Ihr Code zur Passwortzurücksetzung steht unten.\n\nKDWM-TRBZ", "KDWMTRBZ"),
        ("Je code voor wachtwoordherstel staat hieronder.\n\nQRTZ-MBNC", "QRTZMBNC"),
    ],
)
def test_letter_codes_named_by_a_compound_after_the_code_word(text: str, code: str) -> None:
    assert extract_code(channel="email", text=text) == code


@pytest.mark.parametrize(
    ("channel", "text", "code"),
    [
        # Letters only, named plainly, not reading as a word: what it is for may go unsaid.
        ("sms", "Your code is QKZMBF", "QKZMBF"),
        ("sms", "Your login code is wkfjdh. It expires in 10 minutes.", "wkfjdh"),
        ("sms", "Your code is READY", None),
        ("sms", "Din kode er oppgitt nedenfor.", None),
        ("email", "Keine Aktion ist erforderlich. Ihr Code ist keine Nummer.", None),
        # Three digits after an entry verb that says what for.
        ("sms", "Use 739 to log in.", "739"),
        ("sms", "Use 739 more points.", None),
        # A digit with upper-case letters, as alphabets of letters and digits draw them.
        ("sms", "验证码 7MQLRQ", "7MQLRQ"),
        ("sms", "Download 4K VIDEOS now", None),
        # Latin code words glued to Chinese, Japanese or Korean.
        ("sms", "あなたのOTPは678887です。", "678887"),
        ("sms", "您的code是678887", "678887"),
        ("sms", "あなたのcaptchaは:678887です。10分以内有効です。", "678887"),
        # Japanese particles and endings weigh less between a code word and its code.
        ("sms", "次のコードを使用して認証してください DD3V5T", "DD3V5T"),
        ("sms", "ご注文番号 12345678 の確認コードは 482913 です", "482913"),
        # A card number an identifier names does not stand between a code word and its code.
        (
            "sms",
            "OTP for txn of INR 2,499.00 at AMAZON on card XX1234 is 583920. Valid for 5 mins.",
            "583920",
        ),
        ("sms", "Rs.1,250.00 debited from A/c XX4521 on 15-01-24. UPI Ref 423567890.", None),
        # Words for code in more languages.
        ("sms", "508810 ni nambari yako ya kuthibitisha.", "508810"),
        ("sms", "Via kontrolkodo estas 482913", "482913"),
        ("sms", "Su códigu de verificación ye 482913", "482913"),
        # A warning to keep it secret right before it, as banks word one-time codes.
        (
            "sms",
            "Для входа введите код. Звоните 8-800-2005-303. Не сообщайте его никому: 24808",  # noqa: RUF001
            "24808",
        ),
        (
            "sms",
            "Payment of GBP 9.94 to 560027. NEVER share this code, not even with staff 699486",
            "699486",
        ),
        ("sms", "Never share your code with anyone. Order 12345 has shipped.", None),
        ("sms", "Don't tell anyone, 50% off today only with 4455", None),
        # A text that is only its code; not a year.
        ("sms", "367182", "367182"),
        ("sms", "2024", None),
        # Four capitals named plainly, which do not read as a word.
        ("sms", "Your verification code is KFZQ", "KFZQ"),
        ("sms", "Your code: KFZQ", "KFZQ"),
        ("sms", "Voucher code: SAVE", None),
        ("sms", "Error code: HTTP", None),
        # A long code read in groups of four, named plainly, beside a link.
        (
            "email",
            "Your verification code is 8FK2-LQ9X-PZ7M-W3RT (valid for 30 minutes). "
            "Or open https://example.com/v?t=Zx81kQp2",
            "8FK2LQ9XPZ7MW3RT",
        ),
        ("sms", "Your order ABCD-1234-EFGH-5678 has shipped", None),
        ("sms", "Your product key: 8FK2-LQ9X-PZ7M-W3RT-AAAA", None),
        # At the head of the sentence after the one naming it, across a full stop.
        ("sms", "以下は確認コードです。482913を入力してください。", "482913"),
        ("sms", "您的验证码已发送。482913，5分钟内有效。", "482913"),  # noqa: RUF001
        ("sms", "您的订单已发货。482913是您的运单号。", None),
        # A rule drawn between the line naming a code and the code's own line.
        (
            "email",
            "The following one-time code should only be used in your browser.\n\n"
            + "-" * 40
            + "\n\nZ9KL78FY\n\n"
            + "-" * 40,
            "Z9KL78FY",
        ),
        # Turkish dotted capital I: "İndirim kodunuz" is a discount code.
        ("sms", "İndirim kodunuz: YAZ20", None),
        ("sms", "GİRİŞ KODUNUZ: 482913", "482913"),
    ],
)
def test_classes_unseen_messages_miss(channel: str, text: str, code: str | None) -> None:
    assert extract_code(channel=channel, text=text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # Sorani Kurdish names a code کۆد, its suffixes glued on.
        ("کۆدی چونەژوورەوەکەت: 294385\n\nئەم کۆدە لە 5 خولەک بەسەردەچێت.", "294385"),  # noqa: RUF001
        # Vietnamese: the code to enter, the one that follows ("mã" alone is too common).
        (
            "Vui lòng xác minh địa chỉ email của bạn bằng cách nhập các mã sau.\n\n862042\n\n.",
            "862042",
        ),
        ("Vui long nhap ma sau de xac minh: 482913", "482913"),
        # "is" and "your" in Bengali, Urdu and Amharic stand between a code word and its code.
        ("আপনার ইমেইল প্রমাণীকরণ কোড: 482913", "482913"),
        ("آپ کا تصدیقی کوڈ 482913 ہے", "482913"),
        ("የማረጋገጫ ኮድዎ 482913 ነው", "482913"),
    ],
)
def test_code_words_in_scripts_without_spaces_and_more_languages(text: str, code: str) -> None:
    assert extract_code(channel="sms", text=text) == code


def test_khmer_lao_burmese_are_read_as_scripts_without_spaces() -> None:
    """Khmer, Lao and Burmese are written without spaces between words, like Thai: the
    letters between a code word and its code count as Thai's do, not as many words."""
    text = (
        "Hello!\n\nកូដចូលប្រព័ន្ធរបស់អ្នកគឺ៖ 576333\n\nកូដនេះនឹងផុតកំណត់ក្នុងរយៈពេល 10 នាទី។\n\nRegards,\nTodo365"
    )
    assert extract_code(channel="email", subject="សួស្តី", text=text) == "576333"
    for text in (
        "ລະຫັດ OTP ຂອງທ່ານສຳລັບການຢືນຢັນຕົວຕົນແມ່ນ 576333",
        "သင့်အကောင့်ဝင်ရောက်ရန် အတည်ပြုကုဒ်မှာ 576333 ဖြစ်သည်",
        "លេខកូដសម្ងាត់សម្រាប់ចូលប្រើគណនីរបស់លោកអ្នកគឺ 576333",
    ):
        assert extract_code(channel="sms", text=text) == "576333", text


@pytest.mark.parametrize(
    "text",
    [
        # Promotions with a code to enter, in the languages of South-East and South Asia,
        # the Middle East and Africa: a discount code is not a code to sign in with.
        "Nhập mã GIAM50K để được giảm 50.000đ cho đơn hàng từ 200.000đ",
        "Nhập mã ưu đãi TET2026 ngay hôm nay",
        "Gunakan kode HEMAT20, potongan Rp20.000 untuk belanja pertama",
        "Guna kod JIMAT15 untuk diskaun 15% hari ini",
        "Tumia msimbo wa punguzo OFA20 kupata punguzo la 20%",
        "प्रोमो कोड FLAT100 का उपयोग करें और ₹100 की छूट पाएं",
        "ใช้โค้ด SALE50 รับส่วนลด 50% วันนี้เท่านั้น",
        "Daftar hari ini, dapat potongan harga.\n\nBELAJAR30\n\nGunakan kode promo saat checkout.",
    ],
)
def test_promotion_codes_in_more_languages_give_none(text: str) -> None:
    assert extract_code(channel="sms", text=text) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # A code word set equal to the code, as banks write it; its reference stays out.
        ("OTP=482913 (Ref=KXTZ) สำหรับยืนยันการชำระเงิน 250.00 บาท ที่ LAZADA", "482913"),
        ("Your OTP=4829 for login", "4829"),
        # ... but never a parameter of a link or of an identifier.
        ("Visit example.com/login?otp=482913 now", None),
        ("user_code=482913", None),
        ("id=482913 code sent", None),
        # A verification number in Swahili (the short "namba") and Amharic.
        ("M-PESA: Namba yako ya uthibitisho ni 482913. Usishiriki na mtu yeyote.", "482913"),
        ("የማረጋገጫ ቁጥርዎ 482913 ነው። ለማንም አያጋሩ።", "482913"),
    ],
)
def test_code_word_equals_and_verification_numbers(text: str, code: str | None) -> None:
    assert extract_code(channel="sms", text=text) == code


@pytest.mark.parametrize(
    "text",
    [
        # A postal code, named after the word for code as many languages order it, or by a
        # word that holds it (Hebrew), or by a compound (Malay): not a code to sign in with.
        "Kode pos 40115, nomor pesanan 482913",
        "Código postal: 28013",
        "کد پستی: 1591634311",
        "کۆدی پۆستە: 44001",
        "الرمز البريدي: 11564",
        "รหัสไปรษณีย์ 10110",
        "Mã bưu chính: 700000",
        "Kodi ya posta: 00100",
        "מיקוד: 6423901",
        "Poskod: 50450",
    ],
)
def test_postal_codes_named_after_the_code_word_give_none(text: str) -> None:
    assert extract_code(channel="sms", text=text) is None


def test_a_word_after_the_code_word_that_is_a_number_does_not_negate_it() -> None:
    """Only a word right after the code word (an ending and one word at most between) says
    it is not a sign-in code; a reference after the code itself does not."""
    text = "OTP=482913 (Ref=KXTZ) สำหรับยืนยันการชำระเงิน 250.00 บาท"
    assert extract_code(channel="sms", text=text) == "482913"


@pytest.mark.parametrize(
    "text",
    [
        "আপনার কুপন কোড: SAVE2026",  # a coupon's code (Bengali)
        "Your order code: 482913",  # an order's code
        "Kode pesanan Anda: 482913",  # (Indonesian)
        "رمز الطلب: 482913",  # (Arabic)
        "Tu código de descuento: VERANO15",  # a discount's, named after the code word
    ],
)
def test_coupon_and_order_codes_give_none(text: str) -> None:
    assert extract_code(channel="sms", text=text) is None


@pytest.mark.parametrize(
    "text",
    [
        # A word for an order further after the code word, or before it, says what the code
        # is for, not what kind it is.
        "Kode OTP untuk pesanan Anda: 482913",
        "Untuk pesanan Anda, kode verifikasi: 482913",
        "Enter the code in order to sign in: 482913",
        "Your code to confirm the order: 482913",
    ],
)
def test_order_words_farther_from_the_code_word_leave_it_a_code(text: str) -> None:
    assert extract_code(channel="sms", text=text) == "482913"
