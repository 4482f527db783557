"""The action-link extractor: accuracy on the labelled set, and each rule on its own.

The labelled set (``tests/data/links``) holds real verification, reset and
sign-in mails and texts rendered from public auth systems' templates in their
languages, and negatives (notices without a link to click, notifications,
receipts, invoices). Each message names its source and its template family.

- ``tune.jsonl``: the weights were set by hand on these.
- ``consulted.jsonl``: two earlier kept-apart parts, read and fixed, so tuning
  data now. The first: the families a seeded hash picked on the first day;
  its figure was read while the rules changed, then its failures were read
  (a tracked copy of a link taken for a button, "repor" inside "reports").
  The second: Redmine and BookStack mails, set apart unread; read once
  (97.5% exact, 2.5% wrong: Redmine's "your password was changed" notice in
  languages whose "changed" the lexicon lacked), then fixed.
- ``heldout.jsonl``: the kept-apart part the accuracy is pinned on: Kanboard,
  FreshRSS, Cachet, Outline (magic sign-in links) and Rallly mails, set apart
  before the extractor read them and never used to change it.

Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from gateway.extraction import links
from gateway.extraction.extractor import Extractor, run_jsonl
from gateway.extraction.links import KINDS, Link, extract_link

from .helpers import SHARED, need_shared

DATA = Path(__file__).parent / "data" / "links"
SPLIT_SEED = "otpgate-links-2026|"  # the kept-apart families: sha256(seed + family) % 3 == 0


def _load(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _family(record: dict[str, Any]) -> str:
    """A template family: rendered in another layout or channel, it is still the same family."""
    return str(record["family"]).split("+")[0]


def _run(record: dict[str, Any]) -> Link | None:
    return extract_link(
        channel=record["channel"],
        subject=record["subject"],
        text=record["text"],
        html=record["html"],
    )


def _score(records: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(exact, wrong, total): exact is the expected URL or None where none is expected."""
    exact = wrong = 0
    for r in records:
        got = _run(r)
        url = got.url if got else None
        if url == r["link"]:
            exact += 1
        elif url is not None:
            wrong += 1
    return exact, wrong, len(records)


# --- the labelled set ----------------------------------------------------------------------


def test_labelled_set_is_broad_and_split_by_family() -> None:
    """300+ messages in 20+ languages, a quarter negatives, each with its source; the first
    kept-apart part is the families the seeded hash picks, and no family of the kept-apart
    part is anywhere else."""
    tune, consulted, held = _load("tune.jsonl"), _load("consulted.jsonl"), _load("heldout.jsonl")
    every = tune + consulted + held
    assert len(every) >= 300
    assert len({r["language"] for r in every}) >= 20
    assert sum(r["link"] is None for r in every) >= len(every) / 4
    assert len({r["id"] for r in every}) == len(every)
    for r in every:
        assert r["source"]
        assert r["language"]
        assert r["channel"] in ("sms", "email")
        assert (r["link"] is None) == (r["kind"] is None)
        assert r["kind"] is None or r["kind"] in KINDS

    def picked(family: str) -> bool:
        digest = hashlib.sha256((SPLIT_SEED + family).encode()).hexdigest()
        return int(digest, 16) % 3 == 0

    second_round = ("redmine/redmine:", "BookStackApp/BookStack:")
    assert all(picked(_family(r)) or r["source"].startswith(second_round) for r in consulted)
    assert not any(picked(_family(r)) for r in tune)
    assert not {_family(r) for r in held} & {_family(r) for r in tune + consulted}
    sources = {r["source"].split(":")[0] for r in every}
    print(
        f"\nlabelled set: {len(every)} messages, {len({r['language'] for r in every})} languages, "
        f"{len(sources)} source repositories, {len({_family(r) for r in every})} template "
        f"families, {sum(r['link'] is None for r in every)} negatives; kept apart: {len(held)} "
        f"messages in {len({_family(r) for r in held})} families, "
        f"{len({r['language'] for r in held})} languages"
    )


def test_kept_apart_accuracy() -> None:
    """On the kept-apart part, at least 97% exact and at most 1% wrong (a link where another or
    none was expected)."""
    held = _load("heldout.jsonl")
    exact, wrong, total = _score(held)
    _print_figures("kept apart", held)
    assert exact / total >= 0.97
    assert wrong / total <= 0.01


def _print_figures(name: str, records: list[dict[str, Any]]) -> None:
    exact, wrong, total = _score(records)
    by_language: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        got = _run(r)
        by_language[r["language"]][0] += 1
        by_language[r["language"]][1] += (got.url if got else None) == r["link"]
    print(
        f"\n{name}: {total} messages, exact {exact / total:.1%}, wrong {wrong / total:.1%} "
        f"({sum(r['link'] is None for r in records)} negatives)"
    )
    print(
        "  by language (exact/total): "
        + ", ".join(f"{lang} {ok}/{n}" for lang, (n, ok) in sorted(by_language.items()))
    )


def test_consulted_part() -> None:
    """The earlier kept-apart parts (tuning data since their failures were read): 97% exact and
    1% wrong at most."""
    consulted = _load("consulted.jsonl")
    exact, wrong, total = _score(consulted)
    _print_figures("earlier kept-apart parts (consulted)", consulted)
    assert exact / total >= 0.97
    assert wrong / total <= 0.01


def test_tuning_part_by_family() -> None:
    """Family by family over the tuning part (the weights are set by hand, so each family left
    out is read by the same weights): at least 95% exact overall and at most 1% wrong."""
    tune = _load("tune.jsonl")
    families: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in tune:
        families[_family(r)].append(r)
    total_exact = total_wrong = 0
    lines = []
    for family, records in sorted(families.items()):
        exact, wrong, n = _score(records)
        total_exact += exact
        total_wrong += wrong
        lines.append(f"{family} {exact}/{n}" + (f" ({wrong} wrong)" if wrong else ""))
    print(
        f"\ntuning part: {len(tune)} messages, exact {total_exact / len(tune):.1%}, "
        f"wrong {total_wrong / len(tune):.1%}"
    )
    print("  " + "; ".join(lines))
    assert total_exact / len(tune) >= 0.95
    assert total_wrong / len(tune) <= 0.01


def test_kinds_on_the_labelled_set() -> None:
    """Where the link found is the expected one, its kind is the expected one in 90% of cases."""
    right = found = 0
    for r in _load("tune.jsonl") + _load("consulted.jsonl") + _load("heldout.jsonl"):
        got = _run(r)
        if got is not None and got.url == r["link"]:
            found += 1
            right += got.kind == r["kind"]
    print(f"\nkinds right: {right}/{found}")
    assert right / found >= 0.9


# --- one rule at a time -------------------------------------------------------------------

VERIFY = "https://app.example.com/verify-email?token=Zx81kQp2Lm9Rt4Vb7Nc3Hd6J&uid=48"


def _mail(body: str, subject: str = "Confirm your email address") -> Link | None:
    return extract_link(channel="email", subject=subject, html=f"<html><body>{body}</body></html>")


def _button(url: str, label: str) -> str:
    return (
        '<table><tr><td bgcolor="#2563eb" style="border-radius:6px">'
        f'<a href="{url}" style="color:#fff;padding:12px 24px;display:inline-block">{label}</a>'
        "</td></tr></table>"
    )


@pytest.mark.parametrize(
    ("href", "label"),
    [
        ("https://app.example.com/unsubscribe?u=Zx81kQp2Lm9Rt4Vb7Nc3", "Click here"),
        ("https://app.example.com/email/opt-out/Zx81kQp2Lm9Rt4Vb7Nc3", "Confirm"),
        ("https://list.example.com/t/Zx81kQp2Lm9Rt4Vb7Nc3Hd6J", "Unsubscribe"),
        (
            "https://app.example.com/account/prefs/Zx81kQp2Lm9Rt4Vb7Nc3",
            "Manage your email preferences",
        ),
        ("https://app.example.com/legal/privacy-policy", "Confirm"),
        ("https://app.example.com/p/Zx81kQp2Lm9Rt4Vb7Nc3Hd6J", "Privacy policy"),
        ("https://app.example.com/terms", "Verify"),
        ("https://app.example.com/help", "Sign in"),
        ("https://app.example.com/h/Zx81kQp2Lm9Rt4Vb7Nc3Hd6J", "Help center"),
        ("https://app.example.com/s/Zx81kQp2Lm9Rt4Vb7Nc3Hd6J", "Contact support"),
        ("https://app.example.com/m/Zx81kQp2Lm9Rt4Vb7Nc3Hd6J", "View this email in your browser"),
        ("https://www.facebook.com/example", "Verify"),
        ("https://twitter.com/example", "Confirm"),
        ("https://apps.apple.com/app/id123456789", "Sign in"),
        ("https://play.google.com/store/apps/details?id=com.example", "Sign in"),
        ("mailto:support@example.com", "Confirm"),
        ("tel:+15551234567", "Confirm"),
        ("https://app.example.com/logo.png", "Confirm"),
        ("https://app.example.com/d/Zx81kQp2Lm9Rt4Vb7Nc3Hd6J", "Abbestellen"),
        ("https://app.example.com/d/Zx81kQp2Lm9Rt4Vb7Nc3Hd6J", "Se désabonner"),
        ("https://app.example.com/d/Zx81kQp2Lm9Rt4Vb7Nc3Hd6J", "配信停止"),
        ("https://app.example.com/d/Zx81kQp2Lm9Rt4Vb7Nc3Hd6J", "Not you? Let us know"),
    ],
)
def test_excluded_links_are_never_the_answer(href: str, label: str) -> None:
    """Unsubscribe, preferences, privacy, terms, help, support, "view in browser", social, app
    stores, mailto:, tel:, images and "not you?" are never the answer, even in a verification
    mail where they are the only link, drawn as a button, with action words around them."""
    body = f"<p>Please confirm your email address to finish signing up.</p>{_button(href, label)}"
    assert _mail(body) is None
    # Beside the real button they never win either.
    body = f"<p>Please confirm your email address.</p>{_button(VERIFY, 'Confirm')}"
    assert _mail(body + _button(href, label)) == Link(VERIFY, "confirm")


def test_logo_social_badges_and_pixel_are_passed_over() -> None:
    """A logo link, social icons, app-store badges and a 1x1 tracking pixel around the button do
    not stand in its way."""
    body = (
        '<a href="https://example.com/"><img src="https://example.com/logo.png" alt="Example"></a>'
        "<h1>Verify your email</h1><p>Tap the button below to verify your address.</p>"
        + _button(VERIFY, "Verify email")
        + '<a href="https://example.com/"><img src="https://example.com/a.png" alt=""></a>'
        '<a href="https://www.instagram.com/example"><img src="https://example.com/ig.png"></a>'
        '<a href="https://apps.apple.com/app/id1"><img src="https://example.com/as.png" '
        'alt="Download on the App Store"></a>'
        '<img src="https://t.example.com/open/Zx81kQp2Lm9Rt4Vb.gif" width="1" height="1">'
    )
    assert _mail(body, "Verify your email") == Link(VERIFY, "confirm")


@pytest.mark.parametrize(
    "tracked",
    [
        "https://u1234567.ct.sendgrid.net/ls/click?upn=Zx81kQp2Lm9Rt4Vb7Nc3Hd6J-2BfGs5Ya2We8-3D-3D",
        "https://email.mg.example.com/c/eJwNy0EOgiAQQNHTuJQRMRoXLroIQxRF2kwTxtUc3W6a_Jf",
        "https://mandrillapp.com/track/click/30123456/example.com?p=eyJzIjoiWng4MWtRcDJ",
        "https://d2v8tf04.na1.hubspotlinks.com/Ctc/5D+113/d2v8tf04/VWq0Rq7Zx81kQp2Lm9Rt4",
        "https://click.example.com/wf/click?upn=Zx81kQp2Lm9Rt4Vb7Nc3Hd6J-2BfGs5Ya2We8",
    ],
)
def test_click_tracked_links_are_returned_as_they_are(tracked: str) -> None:
    """Behind click tracking the tracked URL is the answer, unchanged, picked by its words:
    the footer's tracked links lose to the button, each tracked on its own."""
    body = (
        f'<a href="{tracked}-logo"><img src="https://example.com/logo.png" alt="Example"></a>'
        "<p>Someone asked to reset the password of your Example account.</p>"
        + _button(tracked, "Reset password")
        + f'<p>Or paste this link into your browser: <a href="{tracked}-copy">'
        "https://example.com/reset?t=Zx81kQp2Lm9Rt4</a></p>"
        f'<p><a href="{tracked}-help">Help</a> · <a href="{tracked}-privacy">Privacy</a> · '
        f'<a href="{tracked}-unsub">Unsubscribe</a></p>'
    )
    assert _mail(body, "Reset your password") == Link(tracked, "reset")


def test_a_tracked_copy_of_the_link_lends_its_destination_to_the_button() -> None:
    """Every link tracked on its own, words the lexicon does not know: the "paste this link"
    copy shows where the button leads, and the button is the answer."""
    tracked = "https://u1234567.ct.sendgrid.net/ls/click?upn=Zx81kQp2Lm9Rt4Vb7Nc3Hd6J-3D"
    body = (
        f'<a href="{tracked}-a">Example</a><p>Lorem ipsum dolor sit amet.</p>'
        + _button(f"{tracked}-b", "Ipsum dolor")
        + f'<p>Consectetur adipiscing elit: <a href="{tracked}-c">{VERIFY}</a></p>'
    )
    assert _mail(body, "Lorem ipsum") == Link(f"{tracked}-b", "confirm")
    # Without the copy nothing says where the button leads: no answer.
    assert _mail(body.split("<p>Consectetur")[0], "Lorem ipsum") is None


def test_a_wrapping_redirect_is_read_through_but_returned_as_it_is() -> None:
    """Behind a redirect that carries its target (Outlook's safe links), the target's path says
    what the link does; the answer is the href as written."""
    wrapped = (
        "https://eur02.safelinks.protection.outlook.com/?url=https%3A%2F%2Fexample.com%2F"
        "verify%3Ftoken%3DZx81kQp2Lm9Rt4Vb7Nc3&data=05%7C02&reserved=0"
    )
    body = f'<p>Lorem ipsum dolor sit amet.</p><p><a href="{wrapped}">Ipsum</a></p>'
    assert _mail(body, "Lorem ipsum") == Link(wrapped, "confirm")


@pytest.mark.parametrize(
    ("subject", "text", "label"),
    [
        ("Ihre Registrierungsbestätigung", "Nur noch ein Schritt zur Kontoaktivierung.", "Weiter"),
        ("Your Example account", "Confirm your email address to finish setting up.", "Continue"),
    ],
)
def test_a_plain_button_takes_its_meaning_from_the_words_before_it(
    subject: str, text: str, label: str
) -> None:
    """A "Continue" button is an action link when the words before it (compounds too) name one."""
    tracked = "https://u1.ct.sendgrid.net/ls/click?upn=Zx81kQp2Lm9Rt4Vb7Nc3Hd6J-3D"
    body = f"<p>{text}</p>" + _button(tracked, label) + f'<p><a href="{tracked}-h">Hilfe</a></p>'
    assert _mail(body, subject) == Link(tracked, "confirm")


def test_entities_in_hrefs_are_decoded_as_a_browser_does() -> None:
    """``&amp;`` in an href is ``&`` in the URL a browser opens, and that URL is the answer."""
    href = VERIFY.replace("&", "&amp;")
    assert _mail(f"<p>Confirm your email address:</p>{_button(href, 'Confirm')}") == Link(
        VERIFY, "confirm"
    )
    assert _mail(f'<p>Verify:</p><a href=" {href}\n">Verify my email</a>') == Link(
        VERIFY, "confirm"
    )


@pytest.mark.parametrize(
    ("text", "url", "kind"),
    [
        (
            f"Hi,\n\nPlease verify your email address by opening this link:\n{VERIFY}.\n\nThanks",
            VERIFY,
            "confirm",
        ),
        (f"To confirm this is correct, go to <{VERIFY}>\n\nThanks!", VERIFY, "confirm"),
        (
            "( https://u1.ct.sendgrid.net/ls/click?upn=logo-AAA )\n\nBevestig jouw e-mailadres\n\n"
            "Bevestig e-mailadres ( https://u1.ct.sendgrid.net/ls/click?upn=confirm-CCC-3D-3D )\n\n"
            "Wij werken samen met Pararius "
            "( https://u1.ct.sendgrid.net/ls/click?upn=pararius-DDD ).",
            "https://u1.ct.sendgrid.net/ls/click?upn=confirm-CCC-3D-3D",
            "confirm",
        ),
        (
            "Click the link below to reset your password:\n\n"
            "https://example.com/password/reset/key/3f-c3p2k9-8f2e1d4b6a/\n\n"
            "Help: https://example.com/help",
            "https://example.com/password/reset/key/3f-c3p2k9-8f2e1d4b6a/",
            "reset",
        ),
        (
            "Hallo,\n\nmelde dich mit diesem Link bei Example an:\n"
            "https://example.com/auth/magic?token=Zx81kQp2Lm9Rt4Vb7Nc3\n\nDatenschutz: https://example.com/datenschutz",
            "https://example.com/auth/magic?token=Zx81kQp2Lm9Rt4Vb7Nc3",
            "sign_in",
        ),
    ],
)
def test_text_only_mail(text: str, url: str, kind: str) -> None:
    """In a text-only mail the bare URL (also in ``<...>`` or ``Label ( URL )``) is read with the
    words before it; trailing punctuation is not part of it."""
    assert extract_link(channel="email", subject="Welcome", text=text) == Link(url, kind)


@pytest.mark.parametrize(
    ("text", "url", "kind"),
    [
        ("Tap to sign in: https://x.co/abc", "https://x.co/abc", "sign_in"),
        (
            "Example: confirm your number at https://ex.am/v/Zx81kQp2Lm9R",
            "https://ex.am/v/Zx81kQp2Lm9R",
            "confirm",
        ),
        (
            "Ihr Anmeldelink: https://ex.am/l/Zx81kQp2 (10 Min. gültig)",
            "https://ex.am/l/Zx81kQp2",
            "sign_in",
        ),
        (
            "ログインするにはこちらをタップ https://ex.am/l/Zx81kQp2",
            "https://ex.am/l/Zx81kQp2",
            "sign_in",
        ),
    ],
)
def test_sms(text: str, url: str, kind: str) -> None:
    """A text with a sign-in or confirmation link gives it, without its trailing punctuation."""
    assert extract_link(channel="sms", text=text) == Link(url, kind)


@pytest.mark.parametrize(
    "text",
    [
        "Your Example code is 482913. Don't share it.",
        "Your order has shipped! Track your package: https://ex.am/t/1Z999AA10123456784",
        "Flash sale: 40% off everything today only https://ex.am/s/Zx81kQp2Lm9R",
        "Your appointment is confirmed for Mon 10:00. Details: https://ex.am/a/Zx81kQp2",
        "Example: Thanks for confirming your number. Download the app or log in to manage "
        "your account: https://ex.am/10AaEl",
    ],
)
def test_sms_without_an_action_link(text: str) -> None:
    """A code, a shipping notice, an offer, a booking or a thank-you with an app link gives
    no link."""
    assert extract_link(channel="sms", text=text) is None


NEWSLETTER = (
    '<a href="https://shop.example.com/">'
    '<img src="https://shop.example.com/logo.png" alt="Shop"></a>'
    "<h1>Spring sale: 30% off</h1><p>Our newest arrivals are here. Shop the collection before "
    "it is gone, and enjoy free shipping on every order over $50.</p>"
    + _button(
        "https://shop.example.com/c/spring?utm_source=newsletter&amp;utm_id=Zx81kQp2Lm9R",
        "Shop now",
    )
    + '<p><a href="https://shop.example.com/p/1234">Linen shirt</a> · '
    '<a href="https://shop.example.com/p/5678">Canvas tote</a></p>'
    '<p><a href="https://shop.example.com/account/login">Sign in to your account</a> · '
    '<a href="https://shop.example.com/unsubscribe?u=Zx81kQp2">Unsubscribe</a></p>'
)
RECEIPT = (
    "<h1>Thanks for your order #10492</h1><p>Order total: $58.00, paid with Visa ending 4242. "
    "Your receipt and invoice are attached.</p>"
    + _button("https://shop.example.com/orders/10492?key=Zx81kQp2Lm9Rt4Vb", "View order")
    + '<p>Questions? <a href="https://shop.example.com/support">Contact support</a></p>'
)
SHIPPING = (
    "<p>Good news! Your order #10492 has shipped and is on its way. Estimated delivery: Friday.</p>"
    + _button("https://track.example.com/1Z999AA10123456784?ref=Zx81kQp2Lm9R", "Track package")
)
PASSWORD_CHANGED = (
    "<p>Hi Anna,</p><p>The password of your Example account was changed on March 3 at 10:42. "
    "If this was you, no further action is required. If it wasn't, contact our support team.</p>"
    '<p><a href="https://example.com/">Example</a> · <a href="https://example.com/help">Help</a></p>'
)


WELCOME = (
    "<h1>Account created</h1><p>Hi Anna, your account on Example has been created.</p>"
    + _button("https://example.com/login", "Log in now")
    + '<p>Or copy this URL: <a href="https://example.com/login">https://example.com/login</a></p>'
)
CHANGED = (
    "<p>Your password was changed.<br />"
    '<a href="https://tracker.example.com/my/password">Change password</a></p>'
    "<p>User: anna<br/>IP address: 203.0.113.7</p>"
)
NOTICE = (
    "<p>Anna has accepted your invitation. Please sign in to "
    '<a href="https://vault.example.com/#/">https://vault.example.com/#/</a> to confirm them.</p>'
)


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Welcome to Example", WELCOME),
        ("Invitation accepted", NOTICE),
        ("[Tracker] Security notification", CHANGED),
        ("Spring sale: 30% off", NEWSLETTER),
        ("Your receipt from Example Shop", RECEIPT),
        ("Your order has shipped", SHIPPING),
        ("Your password was changed", PASSWORD_CHANGED),
    ],
)
def test_newsletters_receipts_and_notices_give_no_link(subject: str, body: str) -> None:
    """A welcome or a notice pointing at the sign-in page or the home page, a newsletter, a
    receipt, a shipping notice and a password-changed notice give no link, though they have
    buttons and words like "log in" (a page anyone can open is not an action link)."""
    assert _mail(body, subject) is None


def test_approve_a_sign_in() -> None:
    """ "Yes, it was me" is the approval link; "No, secure my account" beside it never is."""
    body = (
        "<p>We noticed a new sign-in to your Example account from Chrome on Windows.</p>"
        "<p>Was this you?</p>"
        + _button("https://example.com/security/approve?req=Zx81kQp2Lm9Rt4Vb", "Yes, it was me")
        + _button("https://example.com/security/deny?req=Zx81kQp2Lm9Rt4Vb", "No, secure my account")
    )
    assert _mail(body, "New sign-in to your account") == Link(
        "https://example.com/security/approve?req=Zx81kQp2Lm9Rt4Vb", "approve"
    )


@pytest.mark.parametrize(
    ("subject", "label", "kind"),
    [
        ("Sign in to Example", "Sign in", "sign_in"),
        ("Ihr Anmeldelink", "Jetzt anmelden", "sign_in"),
        ("Connexion à Example", "Se connecter", "sign_in"),
        ("Confirma tu correo", "Confirmar correo electrónico", "confirm"),
        ("Conferma il tuo indirizzo email", "Conferma email", "confirm"),
        ("Bevestig je e-mailadres", "E-mailadres bevestigen", "confirm"),
        ("Bekräfta din e-postadress", "Bekräfta e-post", "confirm"),
        ("Potwierdź adres e-mail", "Potwierdź adres e-mail", "confirm"),
        ("Подтвердите адрес электронной почты", "Подтвердить адрес", "confirm"),
        ("Відновлення пароля", "Скинути пароль", "reset"),
        ("E-posta adresinizi doğrulayın", "E-postamı doğrula", "confirm"),  # noqa: RUF001
        ("メールアドレスの確認", "メールアドレスを確認する", "confirm"),
        ("验证您的邮箱", "验证邮箱", "confirm"),
        ("重設您的密碼", "重設密碼", "reset"),
        ("이메일 인증", "이메일 인증하기", "confirm"),
        ("تأكيد البريد الإلكتروني", "تأكيد البريد الإلكتروني", "confirm"),
        ('אימות כתובת הדוא"ל', "אימות כתובת", "confirm"),
        ("अपना ईमेल सत्यापित करें", "ईमेल सत्यापित करें", "confirm"),
        ("Verifikasi email Anda", "Verifikasi email", "confirm"),
        ("Xác minh email của bạn", "Xác minh email", "confirm"),
        ("ยืนยันอีเมลของคุณ", "ยืนยันอีเมล", "confirm"),
        ("Nollaa salasanasi", "Nollaa salasana", "reset"),
    ],
)
def test_button_words_in_many_languages(subject: str, label: str, kind: str) -> None:
    """A tracked button (its URL says nothing) is found by its words, in many languages."""
    url = "https://u1.ct.sendgrid.net/ls/click?upn=Zx81kQp2Lm9Rt4Vb7Nc3Hd6J-3D"
    body = (
        f'<a href="{url}-logo"><img src="https://example.com/logo.png" alt="Example"></a>'
        f"<p>{subject}</p>" + _button(url, label) + f'<p><a href="{url}-privacy">Privacy</a></p>'
    )
    assert _mail(body, subject) == Link(url, kind)


def test_two_different_action_links_abstain() -> None:
    """Two links with an equal claim (two accounts to confirm) give none: a guess is worse."""
    body = (
        "<p>Confirm your email address for one of your two accounts:</p>"
        + _button("https://a.example.com/verify?token=Zx81kQp2Lm9Rt4Vb", "Confirm email")
        + _button("https://b.example.com/verify?token=Qp2Lm9Rt4VbZx81k", "Confirm email")
    )
    assert _mail(body) is None


def test_extractor_link_and_extract_line() -> None:
    """``Extractor.link`` gives ``extract_link``'s answer; ``otpgate extract`` lines carry it."""
    sms = {"channel": "sms", "text": "Tap to sign in: https://x.co/abc"}
    assert Extractor().link(**sms) == Link("https://x.co/abc", "sign_in")
    stdin = io.StringIO(json.dumps({"id": "m1", **sms}) + "\n")
    stdout = io.StringIO()
    assert run_jsonl(stdin, stdout) == 0
    assert json.loads(stdout.getvalue()) == {"id": "m1", "code": None, "link": "https://x.co/abc"}


@pytest.mark.parametrize(
    "body",
    [
        '<a "x' * 60_000,
        '<a "x>' * 50_000,
        "<" * 300_000,
        "<!--" * 75_000,
        "<style>" * 40_000,
        "https://e.com/verify?token=Zx81kQp2Lm9Rt4Vb " * 6_000,
        "<x y='>'" * 37_500,
    ],
    ids=["open-quotes", "quoted-gt", "lt", "comments", "styles", "urls", "quoted-gt-tags"],
)
def test_malformed_markup_is_read_in_linear_time(body: str) -> None:
    """Open quotes, stray "<", unclosed comments and raw-text tags, and thousands of bare URLs
    are read in linear time (it took 26 s for 300 KB of open quotes when it was quadratic)."""
    started = time.perf_counter()
    extract_link(channel="email", subject="Verify", text=body[:50_000], html=body[:300_000])
    extract_link(channel="sms", text=body[:50_000])
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("markup", ["<x y='>'", "<a href='>'"])
def test_tags_whose_quotes_never_close_are_read_within_50_ms(markup: str) -> None:
    """A quoted ">" in every tag made each tag's reading look at a whole window before the
    plain reading moved on (20 KB took 190 ms); past a budget the body is read the plain way."""
    html = markup * (20_000 // len(markup))
    started = time.process_time()
    assert extract_link(channel="email", subject="Verify", html=html) is None
    assert time.process_time() - started < 0.05


def test_html_is_read_up_to_its_last_counted_tag() -> None:
    """The HTML part is read up to MAX_HTML_TAGS tags: a link after them is not seen."""
    filler = "<span>.</span>" * (links.MAX_HTML_TAGS // 2)
    button = '<p>Confirm your email address:</p><a href="https://e.com/verify?token=Zx81kQp2Lm9R">Verify</a>'
    assert _mail(button + filler) is not None
    assert _mail(filler + button) is None


def test_large_input_stays_fast() -> None:
    """300 KB of links and markup is read in well under a second (a guard, not a speed goal)."""
    html = "".join(
        f'<p>Verify</p><a href="https://example.com/p/{i}/Zx81kQp2Lm9Rt4Vb">Confirm</a>'
        for i in range(4_000)
    )
    started = time.perf_counter()
    assert _mail(html) is None  # thousands of equal claims: none wins
    assert time.perf_counter() - started < 2.0


# --- the code corpus ---------------------------------------------------------------------

CORPUS = [SHARED / "corpus" / "otp_dev.jsonl", SHARED / "corpus" / "email_dev.jsonl"]
NEVER_WORDS = (
    "unsubscribe",
    "optout",
    "opt-out",
    "privacy",
    "/terms",
    "/help",
    "facebook.com",
    "twitter.com",
    "instagram.com",
    "linkedin.com",
    "mailto:",
    "tel:",
)


def test_code_corpus_messages() -> None:
    """In the code corpus, a message with no URL gives no link, and a link found is never an
    unsubscribe, privacy, help or social link."""
    need_shared(*CORPUS)
    counts: Counter[str] = Counter()
    for path in CORPUS:
        for line in path.read_text(encoding="utf-8").splitlines():
            m = json.loads(line)
            subject, text, html = m.get("subject") or "", m.get("text") or "", m.get("html") or ""
            got = extract_link(channel=m["channel"], subject=subject, text=text, html=html)
            counts["messages"] += 1
            if "http" not in f"{text}{html}".lower():
                assert got is None, m["id"]
            if got is not None:
                counts["links"] += 1
                assert not any(w in got.url.lower() for w in NEVER_WORDS), m["id"]
    print(f"\ncode corpus: {counts['messages']} messages, {counts['links']} with a link")
