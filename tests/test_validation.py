"""The one place that knows what a phone number, a domain name and a mail address look like."""

from __future__ import annotations

import pytest

from gateway.validation import (
    is_domain_name,
    is_e164,
    is_local_part,
    is_public_domain_name,
    origin_header,
    origin_of,
    split_mail_address,
)


@pytest.mark.parametrize("number", ["+14155550100", "+4930123456", "+1234567", "+123456789012345"])
def test_e164_numbers_are_accepted(number: str) -> None:
    """A plus, a country code not starting with 0, and 7 to 15 digits in all is E.164."""
    assert is_e164(number)


@pytest.mark.parametrize(
    "number",
    [
        "4155550100",  # no plus
        "+0123456789",  # no country code starts with 0
        "+1 415 555 0100",  # spaces
        "+1415555010012345",  # 16 digits
        "+123456",  # 6 digits
        "+14155550100\n",  # a final newline
        "+\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0660",  # Arabic-Indic
        "+1415555\u00b2100",  # a superscript two
    ],
)
def test_other_numbers_are_not_e164(number: str) -> None:
    """Anything else, including non-ASCII digits and a trailing newline, is refused."""
    assert not is_e164(number)


def test_domain_names() -> None:
    """Labels of letters, digits and inner hyphens; underscores only where DNS names allow them."""
    assert is_domain_name("inbox.localhost")
    assert is_domain_name("localhost")
    assert is_domain_name("xn--bcher-kva.example")
    assert not is_domain_name("-inbox.example")
    assert not is_domain_name("inbox-.example")
    assert not is_domain_name("a..example")
    assert not is_domain_name("Inbox.example")  # callers lower-case first
    assert not is_domain_name(f"{'a' * 64}.example")
    assert not is_domain_name(".".join(["a" * 63] * 4))  # 255 characters
    assert not is_domain_name("_dmarc.example")
    assert is_domain_name("_dmarc.example", underscores=True)


def test_public_domain_names_need_an_alphabetic_top_level_domain() -> None:
    """``example.com`` is one; ``localhost``, ``example.c`` and ``example.123`` are not."""
    assert is_public_domain_name("mail.example.com")
    for name in ("localhost", "example.c", "example.123", "exa_mple.com", ""):
        assert not is_public_domain_name(name)


def test_mail_addresses() -> None:
    """A dot-atom local part of at most 64 characters, the domain left to the caller."""
    assert split_mail_address("person@example.com") == ("person", "example.com")
    assert split_mail_address("a+tag@b@example.com") is None  # '@' is not an atom character
    assert split_mail_address("first.last+x@example.com") == ("first.last+x", "example.com")
    assert split_mail_address("a@") == ("a", "")
    for bad in ("example.com", "@example.com", "a..b@example.com", '"a b"@example.com'):
        assert split_mail_address(bad) is None
    assert split_mail_address("a\n@example.com") is None
    assert split_mail_address(f"{'a' * 65}@example.com") is None
    assert split_mail_address(f"a@{'b' * 250}.com") is None  # longer than 254
    assert is_local_part("a" * 64) and not is_local_part("a" * 65)


def test_an_origin_header_is_exactly_scheme_host_and_port() -> None:
    """An Origin with a user, a path, a query or spaces is none; a URL with a user is none."""
    assert origin_header("https://Host.example") == ("https", "host.example", 443)
    assert origin_header("http://host.example:8080") == ("http", "host.example", 8080)
    for bad in (
        "http://evil@host.example",
        "http://host.example@evil.example",
        "http://host.example/",
        "http://host.example/path",
        "http://host.example?x",
        "http://host.example#x",
        " http://host.example",
        "null",
    ):
        assert origin_header(bad) is None, bad
    assert origin_of("https://user:pw@host.example/") is None
    assert origin_of("https://host.example/base") == ("https", "host.example", 443)
