"""The SSRF guard: URL checks without sockets, then real requests against a loopback canary.

The connection tests never leave loopback: hostnames are answered by
:class:`FakeResolver` (a table, or ``AI_NUMERICHOST`` which never asks DNS),
and every connector gets a spy socket factory behind the guard that records
each address a socket would be opened for and refuses, without creating a
socket, any address outside 127.0.0.0/8 and ::1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway import netguard
from gateway.errors import Invalid
from gateway.netguard import (
    RefusedConnection,
    UnsafeTarget,
    check_url,
    describe_refusal,
    guarded_connector,
    is_public_address,
    parse_ip_literal,
)

NOT_PUBLIC = [
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16",  # metadata
    "100.64.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "127.255.0.9",
    "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
    "0.1.2.3", "255.255.255.255", "224.0.0.1", "240.0.0.1", "198.18.0.1", "192.0.2.1",
    "198.51.100.7", "203.0.113.9", "192.0.0.192", "192.88.99.1",
    "::1", "::", "fe80::1", "fec0::1", "fc00::1", "ff02::1", "100::1", "2001:db8::1",
    "2001::1", "3fff::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:7f00:1::1",
]  # fmt: skip
PUBLIC = [
    "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
    "2002:808:808::1",
]  # fmt: skip


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_not_public(address: str) -> None:
    """Loopback, private, link-local, metadata, special and IPv4-embedding forms are refused."""
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address: str) -> None:
    """Ordinary public unicast addresses, also embedded in IPv6, are accepted."""
    assert is_public_address(ipaddress.ip_address(address))


SPELLINGS = {
    "127.0.0.1": "127.0.0.1", "127.1": "127.0.0.1", "2130706433": "127.0.0.1",
    "0x7f000001": "127.0.0.1", "017700000001": "127.0.0.1", "0x7f.1": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1", "0x7f.0.0.1": "127.0.0.1", "0X7F.0.1": "127.0.0.1",
    "0": "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
    "4294967295": "255.255.255.255", "134744072": "8.8.8.8",
    "[::1]": "::1", "::1": "::1", "[::ffff:127.0.0.1]": "::ffff:7f00:1", "[::]": "::",
}  # fmt: skip
NOT_LITERALS = [
    "", "example.com", "256.0.0.1", "1.2.3.4.5", "4294967296", "09", "0x", "1..2", ".1",
    "127.0.0.1.", "1.2.3.4 x", "[1.2.3.4]", "[fe80::1%25eth0]", "fe80::1%eth0", "[::1",
    "١٢٧.0.0.1",
]  # fmt: skip


@pytest.mark.parametrize(("text", "address"), SPELLINGS.items())
def test_parse_ip_literal_reads_every_inet_aton_spelling(text: str, address: str) -> None:
    """Decimal, octal, hex, one to four parts and bracketed IPv6 all read as the address."""
    assert parse_ip_literal(text) == ipaddress.ip_address(address)


@pytest.mark.parametrize("text", NOT_LITERALS)
def test_parse_ip_literal_rejects_what_is_not_a_plain_address(text: str) -> None:
    """Names, out-of-range numbers, trailing junk and zoned IPv6 are not IP literals."""
    assert parse_ip_literal(text) is None


def test_parse_ip_literal_agrees_with_inet_aton() -> None:
    """For every IPv4 spelling here, the guard reads the same address the socket layer does."""
    for text in [*SPELLINGS, *NOT_LITERALS]:
        if ":" in text or "[" in text or " " in text:
            continue  # inet_aton is IPv4-only and stops at a space
        try:
            expected: ipaddress.IPv4Address | None = ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            expected = None
        assert parse_ip_literal(text) == expected, text


UNSAFE_URLS = [
    "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://100.64.0.1/",
    "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/", "http://127.0.0.1/",
    "http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://017700000001/",
    "http://0x7f.1/", "http://127.0.0.1./", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
    "http://[::1]/", "http://[::]/", "http://0.0.0.0/", "http://0/", "http://[fe80::1%25eth0]/",
    "http://[64:ff9b::7f00:1]/", "http://localhost/", "http://LocalHost./", "http://foo.localhost/",
    "http://printer.local/", "http://db.internal/", "http://metadata.google.internal/",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # fullwidth 127.0.0.1
]  # fmt: skip
INVALID_URLS = [
    "ftp://example.com/", "file:///etc/passwd", "example.com/hook", "http://user:pass@example.com/",
    "http://@example.com/", "http:///hook", "http://:8080/", "http://example.com:0/",
    "http://example.com:65536/", "http://example.com:1000001/", "http://example.com:8o/",
    "http://exa mple.com/", "http://example.com/\nx", "http://example.com/\x00", "http://[::1/",
    "http://[1.2.3.4]/", "http://1.2.3.4.5/", "http://256.0.0.1/", "http://-bad-.com/",
    "http://under%2e.com/", "http://" + "a" * 64 + ".com/", "https://example.com/" + "a" * 2048,
]  # fmt: skip


@pytest.mark.parametrize("url", UNSAFE_URLS)
def test_check_url_refuses_non_public_hosts(url: str) -> None:
    """An IP literal in any spelling that is not public, or an internal name, is UnsafeTarget."""
    with pytest.raises(UnsafeTarget) as caught:
        check_url(url, allow_private=False)
    assert caught.value.code == "unsafe_target" and caught.value.message.startswith("refused: ")


@pytest.mark.parametrize("url", INVALID_URLS)
def test_check_url_refuses_bad_syntax(url: str) -> None:
    """Wrong scheme, credentials, no host, bad port, bad host or overlong URL is invalid_url."""
    with pytest.raises(Invalid) as caught:
        check_url(url, allow_private=False)
    assert type(caught.value) is Invalid and caught.value.code == "invalid_url"
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("http://8.8.8.8", "http://8.8.8.8/"),
        ("https://1.1.1.1:8443/hook?x=1#frag", "https://1.1.1.1:8443/hook?x=1"),
        ("https://[2606:4700:4700::1111]/", "https://[2606:4700:4700::1111]/"),
        ("HTTPS://Example.COM/Hook", "https://example.com/Hook"),
        ("http://134744072:80/", "http://8.8.8.8:80/"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
    ],
)
def test_check_url_accepts_public_targets(url: str, normalised: str) -> None:
    """Public hosts pass, normalised (lower-case, canonical IP, no fragment)."""
    assert check_url(url, allow_private=False) == normalised


def test_check_url_messages_do_not_echo_secrets() -> None:
    """A refusal names what is wrong, never the URL's credentials, path or query."""
    for url in ("http://admin:hunter2@example.com/", "gopher://example.com/?token=hunter2"):
        with pytest.raises(Invalid) as caught:
            check_url(url, allow_private=False)
        assert "hunter2" not in caught.value.message


def test_check_url_allow_private_still_refuses_the_unreachable() -> None:
    """With private targets allowed, loopback and RFC 1918 pass; 0.0.0.0, ::, multicast,
    broadcast and metadata do not."""
    for url in ("http://localhost:8080/", "http://127.1/", "http://10.0.0.1/", "http://[::1]/"):
        check_url(url, allow_private=True)
    for url in ("http://0.0.0.0/", "http://[::]/", "http://224.0.0.1/", "http://255.255.255.255/"):
        with pytest.raises(UnsafeTarget):
            check_url(url, allow_private=True)
    for url in (
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
    ):
        with pytest.raises(UnsafeTarget):
            check_url(url, allow_private=True)


def test_unsafe_target_is_an_invalid_request_error() -> None:
    """UnsafeTarget is an Invalid with its own code, and a connection refusal carries one."""
    assert issubclass(UnsafeTarget, Invalid) and UnsafeTarget.code == "unsafe_target"
    assert RefusedConnection("x.example").error.code == "unsafe_target"


# --- connection time: a real ClientSession against a loopback canary -------------------------


class Canary:
    """Loopback listeners (127.0.0.1, and ::1 on the same port when possible) that count."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0
        self.has_ipv6 = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    """A fresh canary per test, so every count starts at zero."""
    c = Canary()
    servers = [await asyncio.start_server(c.handle, "127.0.0.1", 0)]
    c.port = servers[0].sockets[0].getsockname()[1]
    try:
        servers.append(await asyncio.start_server(c.handle, "::1", c.port))
        c.has_ipv6 = True
    except OSError:
        pass
    yield c
    for server in servers:
        server.close()
        await server.wait_closed()


class FakeResolver(AbstractResolver):
    """Answers names from a table (in turn, the last one repeating), others only if numeric."""

    def __init__(self, table: dict[str, list[list[str]]] | None = None) -> None:
        self.table = table or {}
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        if host in self.table:
            turns = self.table[host]
            addresses = turns[min(self.calls.count(host), len(turns)) - 1]
        else:  # AI_NUMERICHOST: parse like the system resolver, never ask DNS
            infos = socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST)
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        pass


class SpySockets:
    """A socket factory behind the guard: records every address, opens loopback only."""

    def __init__(self) -> None:
        self.addresses: list[str] = []

    def __call__(self, addr_info: Any) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        self.addresses.append(sockaddr[0])
        if not ipaddress.ip_address(sockaddr[0]).is_loopback:
            raise OSError("the test refuses to leave loopback")
        return socket.socket(family, kind, proto)


needs_socket_factory = pytest.mark.skipif(
    not netguard._HAS_SOCKET_FACTORY, reason="aiohttp < 3.12 has no socket_factory hook"
)


async def fetch(
    url: str, *, allow_private: bool, resolver: AbstractResolver
) -> tuple[int | None, BaseException | None, SpySockets]:
    """GET *url* through a guarded session; return (status, error, spy)."""
    spy = SpySockets()
    extra: dict[str, Any] = {"socket_factory": spy} if netguard._HAS_SOCKET_FACTORY else {}
    connector = guarded_connector(allow_private=allow_private, resolver=resolver, **extra)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        try:
            async with session.get(url) as response:
                return response.status, None, spy
        except aiohttp.ClientError as exc:
            return None, exc, spy


def assert_refused(error: BaseException | None, spy: SpySockets, canary: Canary) -> None:
    assert error is not None
    # aiohttp 3.14 itself rejects non-canonical IPv4 literals (127.1, 2130706433) before
    # any connector code runs; older versions hand them to the guard, which reads them
    # as inet_aton does (pinned by the parse_ip_literal tests above).
    assert describe_refusal(error) or isinstance(error, aiohttp.InvalidUrlClientError), error
    assert spy.addresses == [] and canary.accepted == 0


LOOPBACK_URLS = [
    "http://127.0.0.1:{port}/", "http://127.1:{port}/", "http://2130706433:{port}/",
    "http://0x7f000001:{port}/", "http://017700000001:{port}/", "http://0x7f.1:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/", "http://[::1]:{port}/", "http://localhost:{port}/",
    "http://0.0.0.0:{port}/", "http://[::]:{port}/", "http://rebind.example:{port}/",
]  # fmt: skip
LOOPBACK_NAMES = {"localhost": [["127.0.0.1", "::1"]], "rebind.example": [["127.0.0.1"]]}


@pytest.mark.parametrize("template", LOOPBACK_URLS)
async def test_guard_refuses_loopback_in_every_spelling(template: str, canary: Canary) -> None:
    """Every spelling of loopback, literal or resolved, is refused before a socket is opened."""
    resolver = FakeResolver(LOOPBACK_NAMES)
    status, error, spy = await fetch(
        template.format(port=canary.port), allow_private=False, resolver=resolver
    )
    assert status is None
    assert_refused(error, spy, canary)


async def test_refusal_message_names_the_host(canary: Canary) -> None:
    """The refusal reads "refused: HOST resolves to a non-public address" and hides the address."""
    resolver = FakeResolver(LOOPBACK_NAMES)
    _, error, _ = await fetch(
        f"http://rebind.example:{canary.port}/", allow_private=False, resolver=resolver
    )
    assert isinstance(error, aiohttp.ClientConnectorError)
    assert describe_refusal(error) == "refused: rebind.example resolves to a non-public address"
    assert "refused: rebind.example" in str(error) and "127.0.0.1" not in str(error)


async def test_dns_rebinding_is_refused_at_connection_time(canary: Canary) -> None:
    """A name that answered public when checked and loopback when connecting is refused."""
    resolver = FakeResolver({"rebind.example": [["8.8.8.8"], ["127.0.0.1"]]})
    url = f"http://rebind.example:{canary.port}/"
    check_url(url, allow_private=False)
    first = await resolver.resolve("rebind.example", canary.port)  # a check-time lookup
    assert all(is_public_address(ipaddress.ip_address(a["host"])) for a in first)
    _, error, spy = await fetch(url, allow_private=False, resolver=resolver)
    assert resolver.calls == ["rebind.example", "rebind.example"]
    assert_refused(error, spy, canary)


@pytest.mark.parametrize(
    "answers",
    [["192.0.2.1", "127.0.0.1"], ["127.1"], ["2130706433"], ["localhost"], ["::ffff:7f00:1"]],
)
async def test_resolver_answers_that_are_not_public_are_refused(
    answers: list[str], canary: Canary
) -> None:
    """Non-public, non-canonical or non-numeric resolver answers never reach a socket."""
    resolver = FakeResolver({"mixed.example": [answers]})
    _, error, spy = await fetch(
        f"http://mixed.example:{canary.port}/", allow_private=False, resolver=resolver
    )
    assert_refused(error, spy, canary)


@needs_socket_factory
async def test_mixed_answer_connects_only_to_the_public_address(canary: Canary) -> None:
    """A name resolving to public and loopback is tried on the public address only."""
    resolver = FakeResolver({"mixed.example": [["127.0.0.1", "8.8.8.8", "::1"]]})
    _, error, spy = await fetch(
        f"http://mixed.example:{canary.port}/", allow_private=False, resolver=resolver
    )
    assert error is not None and describe_refusal(error) is None  # the spy's refusal
    assert spy.addresses == ["8.8.8.8"] and canary.accepted == 0


async def _unfiltered(self: Any, host: str, port: int = 0, family: Any = socket.AF_INET) -> Any:
    return await self._inner.resolve(host, port, family)


MESSAGES = {
    "127.0.0.1": "refused: 127.0.0.1 is not a public address",
    "rebind.example": "refused: rebind.example resolves to a non-public address",
    "socket_factory": "refused: the connection is to a non-public address",
}


@pytest.mark.parametrize(
    ("layer", "host"),
    [  # IP-literal hosts never reach a resolver, so that layer is tried with a name only
        ("resolver", "rebind.example"),
        ("connector", "rebind.example"),
        ("connector", "127.0.0.1"),
        ("socket_factory", "rebind.example"),
        ("socket_factory", "127.0.0.1"),
    ],
)
async def test_each_layer_refuses_on_its_own(
    layer: str, host: str, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolver filter, connector override and socket factory each refuse loopback alone."""
    if layer == "socket_factory" and not netguard._HAS_SOCKET_FACTORY:
        pytest.skip("aiohttp < 3.12 has no socket_factory hook")
    if layer != "resolver":
        monkeypatch.setattr(netguard._GuardedResolver, "resolve", _unfiltered)
    if layer != "connector":
        monkeypatch.setattr(
            netguard._GuardedConnector,
            "_wrap_create_connection",
            aiohttp.TCPConnector._wrap_create_connection,
        )
    if layer != "socket_factory":
        monkeypatch.setattr(netguard, "_guarded_socket_factory", lambda allow, inner: inner)
    resolver = FakeResolver(LOOPBACK_NAMES)
    _, error, spy = await fetch(
        f"http://{host}:{canary.port}/", allow_private=False, resolver=resolver
    )
    assert error is not None
    assert (
        describe_refusal(error) == MESSAGES["socket_factory" if layer == "socket_factory" else host]
    )
    assert spy.addresses == [] and canary.accepted == 0


@pytest.mark.parametrize(
    "template", ["http://127.0.0.1:{port}/", "http://localhost:{port}/", "http://[::1]:{port}/"]
)
async def test_allow_private_reaches_the_canary(template: str, canary: Canary) -> None:
    """With private targets allowed the same session reaches the canary: it does count."""
    if "[::1]" in template and not canary.has_ipv6:
        pytest.skip("no IPv6 loopback here")
    resolver = FakeResolver({"localhost": [["127.0.0.1"]]})
    status, error, _ = await fetch(
        template.format(port=canary.port), allow_private=True, resolver=resolver
    )
    assert error is None and status == 204 and canary.accepted == 1


@pytest.mark.parametrize("template", ["http://0.0.0.0:{port}/", "http://[::]:{port}/"])
async def test_allow_private_still_refuses_unspecified(template: str, canary: Canary) -> None:
    """0.0.0.0 and :: reach the local host, so they are refused even with private allowed."""
    _, error, spy = await fetch(
        template.format(port=canary.port), allow_private=True, resolver=FakeResolver()
    )
    assert_refused(error, spy, canary)


async def test_describe_refusal_ignores_other_failures(canary: Canary) -> None:
    """An ordinary connection failure, or any other error, is not reported as a refusal."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    _, error, _ = await fetch(
        f"http://127.0.0.1:{closed_port}/", allow_private=True, resolver=FakeResolver()
    )
    assert isinstance(error, aiohttp.ClientConnectorError) and describe_refusal(error) is None
    assert describe_refusal(ValueError("x")) is None
