"""The guard for every outgoing URL: strangers' URLs may reach public addresses only.

Tenants give the gateway URLs to deliver webhooks to.  Unless the operator
sets ``OTPGATE_ALLOW_PRIVATE_TARGETS=1``, such a URL must not lead to
loopback, a private network, link-local or a cloud metadata service.

Why the check happens at connection time
-----------------------------------------
A check when the URL is registered cannot be enough: a name may resolve to a
public address then and to 127.0.0.1 a second later (DNS rebinding), and one
answer may mix public and private addresses.  So :func:`check_url` refuses only
what is wrong whatever DNS says (syntax, IP literals in any spelling, internal
names) and never resolves, while :func:`guarded_connector` checks the exact
address every socket is about to connect to, before any SYN is sent:

1. a resolver wrapper drops non-public answers, so a name resolving to a mix
   connects only to its public addresses, and fails when none is left;
2. ``TCPConnector._wrap_create_connection``, the one method that receives the
   final address list (aiohttp 3.10 to 3.14), checks that list again; this is
   the layer IP-literal hosts meet, as aiohttp never sends them to a resolver;
3. where aiohttp has the public ``socket_factory`` hook (3.12+), it checks
   each address once more, so an aiohttp that stopped calling (2) fails closed.

Addresses are read as the socket layer reads them (``inet_aton``: ``127.1``,
``2130706433``, ``0x7f.1``); anything that is not a plain IP address at that
point is refused rather than handed to the OS to resolve.  Through an HTTP
proxy the guard sees the proxy, not the target: do not give it one.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import ipaddress
import socket
from collections.abc import Callable
from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler

from .errors import Invalid
from .validation import is_domain_name

__all__ = [
    "RefusedConnection",
    "UnsafeTarget",
    "check_url",
    "describe_refusal",
    "guarded_connector",
    "is_public_address",
    "parse_ip_literal",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
SocketFactory: TypeAlias = Callable[[AddrInfoType], socket.socket]

MAX_URL_LENGTH = 2048

_V4_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_V4_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_V4_NOT_PUBLIC = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # carrier-grade NAT; holds Alibaba's metadata 100.100.100.200
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local; holds the cloud metadata 169.254.169.254
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (Oracle's metadata 192.0.0.192)
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast 255.255.255.255
    )
)
# Every public IPv6 unicast address is in 2000::/3; outside it, only the forms
# that embed an IPv4 address are looked into, everything else (::, ::1,
# IPv4-compatible ::/96, fc00::/7, fe80::/10, fec0::/10, ff00::/8) is refused.
_V6_GLOBAL = ipaddress.IPv6Network("2000::/3")
_V6_NOT_PUBLIC = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF special purpose: Teredo, benchmarking, ORCHID
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_V6_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Metadata services, refused even when private targets are allowed.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal")  # and metadata.google.internal
_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789abcdef"}
_HAS_SOCKET_FACTORY = "socket_factory" in inspect.signature(aiohttp.TCPConnector).parameters


class UnsafeTarget(Invalid):
    """The URL leads, or may lead, to an address strangers must not reach."""

    code = "unsafe_target"


class RefusedConnection(OSError):
    """The guard refused to connect; aiohttp wraps it in a ClientConnectorError."""

    def __init__(self, host: str | None) -> None:
        # The message never names a resolved address: a tenant could map internal DNS with it.
        if not host:
            text = "refused: the connection is to a non-public address"
        elif parse_ip_literal(host) is not None:
            text = f"refused: {host} is not a public address"
        else:
            text = f"refused: {host} resolves to a non-public address"
        super().__init__(errno.EACCES, text)

    @property
    def error(self) -> UnsafeTarget:
        """The same refusal as the domain error, for callers that report those."""
        return UnsafeTarget(str(self.strerror))


def is_public_address(ip: IPAddress) -> bool:
    """True when *ip* is an ordinary public unicast address a stranger may make us reach."""
    if ip in _METADATA:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public_address(embedded)
        return ip in _V6_GLOBAL and not any(ip in net for net in _V6_NOT_PUBLIC)
    return not any(ip in net for net in _V4_NOT_PUBLIC)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 or 6to4 address leads to."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _V6_NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _may_connect(ip: IPAddress, allow_private: bool) -> bool:
    """The policy: public only, or with *allow_private* anything but the unreachable."""
    if is_public_address(ip):
        return True
    if not allow_private:
        return False
    base = (_embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None) or ip
    return not (
        ip in _METADATA
        or base in _METADATA
        or base.is_unspecified
        or base.is_multicast
        or base in _V4_THIS_NETWORK
        or base == _V4_BROADCAST
    )


def _may_connect_to(host: object, allow_private: bool) -> bool:
    """Check an address as a resolver or a sockaddr spells it; non-IP text fails closed."""
    ip = parse_ip_literal(host) if isinstance(host, str) else None
    return ip is not None and _may_connect(ip, allow_private)


def parse_ip_literal(host: str) -> IPAddress | None:
    """Read *host* as the socket layer would: any ``inet_aton`` form, or IPv6 without a zone id.

    Returns None for a host that is not an IP address (including a zoned IPv6).
    """
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if bracketed or ":" in host:
        if "%" in host:  # zone ids: only for link-local, and they smuggle text
            return None
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    numbers: list[int] = []
    for part in host.lower().split("."):
        base, digits = 10, part
        if part.startswith("0x"):
            base, digits = 16, part[2:]
        elif part.startswith("0") and len(part) > 1:
            base, digits = 8, part[1:]
        if not digits or any(c not in _DIGITS[base] for c in digits):
            return None
        if len(digits.lstrip("0")) > 11:  # far out of range; spare int() the work
            return None
        numbers.append(int(digits, base))
    *head, last = numbers
    if len(head) > 3 or any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def check_url(url: str, *, allow_private: bool) -> str:
    """Check a URL a tenant registers and return it normalised; never resolves DNS.

    Raises Invalid (code ``invalid_url``) for bad syntax and UnsafeTarget for a
    host that is non-public whatever DNS says.  Messages never echo the URL.
    """
    if len(url) > MAX_URL_LENGTH:
        raise _bad(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise _bad("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _bad("the URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _bad("the URL's scheme must be http or https")
    netloc = parts.netloc
    if "@" in netloc:
        raise _bad("the URL must not contain a user name or password")
    if netloc.startswith("["):
        end = netloc.find("]")
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise _bad("the URL's host is not a valid IPv6 address")
        port_text = rest[1:]
    else:
        host, _, port_text = netloc.partition(":")
    if not host:
        raise _bad("the URL has no host")
    if port_text and not (
        port_text.isascii()
        and port_text.isdigit()
        and len(port_text) <= 5
        and 0 < int(port_text) < 65536
    ):
        raise _bad("the URL's port must be a number from 1 to 65535")
    host = _check_host(host.lower(), allow_private)
    port = f":{int(port_text)}" if port_text else ""
    return urlunsplit((scheme, host + port, parts.path or "/", parts.query, ""))


def _check_host(host: str, allow_private: bool) -> str:
    """Refuse a host that is non-public whatever DNS says; return its normal form."""
    if host.startswith("["):
        if "%" in host:
            raise UnsafeTarget("refused: IPv6 zone ids are not allowed")
        ip = parse_ip_literal(host)
        if not isinstance(ip, ipaddress.IPv6Address):
            raise _bad("the URL's host is not a valid IPv6 address")
    else:
        if not host.isascii():  # first, as IDNA maps fullwidth digits and dots to ASCII
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise _bad("the URL's host is not a valid host name") from None
        ip = parse_ip_literal(host.removesuffix("."))
    if ip is not None:
        if not _may_connect(ip, allow_private):
            raise UnsafeTarget(f"refused: {host} is not a public address")
        return f"[{ip}]" if ip.version == 6 else str(ip)
    name = host.removesuffix(".")
    if not is_domain_name(name, underscores=True):
        raise _bad("the URL's host is not a valid host name")
    last = name.rpartition(".")[2]
    if last.isdigit() or (last.startswith("0x") and all(c in _DIGITS[16] for c in last[2:])):
        raise _bad("the URL's host is not a valid IP address")  # numeric, yet no IPv4
    if not allow_private and (name == "localhost" or name.endswith(_INTERNAL_SUFFIXES)):
        raise UnsafeTarget(f"refused: {name} is an internal name")
    return host


def _bad(message: str) -> Invalid:
    return Invalid(message, code="invalid_url")


def describe_refusal(exc: BaseException) -> str | None:
    """A short text when *exc* (however aiohttp wrapped it) came from the guard, else None."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, RefusedConnection):
            return str(e.strerror)
        if isinstance(e, UnsafeTarget):
            return e.message
        if isinstance(e, aiohttp.ClientConnectorError):
            todo.append(e.os_error)
        todo += [e.__cause__, e.__context__]
    return None


class _GuardedResolver(AbstractResolver):
    """Resolve with *inner*, keeping only the answers the policy allows."""

    def __init__(self, inner: AbstractResolver, *, allow_private: bool) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        allowed = [a for a in answers if _may_connect_to(a["host"], self._allow_private)]
        if not allowed:
            raise RefusedConnection(host)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class _GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector that checks the final address list before it connects."""

    def __init__(self, *, allow_private: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._netguard_allow_private = allow_private

    async def _wrap_create_connection(
        self,
        *args: Any,
        addr_infos: list[AddrInfoType],
        req: aiohttp.ClientRequest,
        client_error: type[Exception] = aiohttp.ClientConnectorError,
        **kwargs: Any,
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        allow = self._netguard_allow_private
        allowed = [info for info in addr_infos if _may_connect_to(info[4][0], allow)]
        if not allowed:
            refusal = RefusedConnection(req.url.raw_host)
            raise client_error(req.connection_key, refusal) from refusal
        return await super()._wrap_create_connection(
            *args,
            addr_infos=allowed,
            req=req,
            client_error=client_error,
            **kwargs,
        )


def _guarded_socket_factory(allow_private: bool, inner: SocketFactory | None) -> SocketFactory:
    def open_socket(addr_info: AddrInfoType) -> socket.socket:
        if not _may_connect_to(addr_info[4][0], allow_private):
            raise RefusedConnection(None)
        if inner is not None:
            return inner(addr_info)
        family, kind, proto, _, _ = addr_info
        return socket.socket(family, kind, proto)

    return open_socket


def guarded_connector(
    *,
    allow_private: bool,
    resolver: AbstractResolver | None = None,
    **connector_kwargs: Any,
) -> aiohttp.TCPConnector:
    """A TCPConnector that refuses non-public addresses at connection time.

    *resolver* (default: the system's, in a thread) stays the caller's to close,
    as with aiohttp.  A refusal surfaces as an ``aiohttp.ClientConnectorError``
    whose message reads "refused: HOST resolves to a non-public address"; see
    :func:`describe_refusal`.  With *allow_private* loopback and private
    networks are allowed, but never 0.0.0.0, ::, multicast, broadcast or metadata.
    """
    if _HAS_SOCKET_FACTORY:
        connector_kwargs["socket_factory"] = _guarded_socket_factory(
            allow_private, connector_kwargs.get("socket_factory")
        )
    inner = resolver if resolver is not None else aiohttp.ThreadedResolver()
    return _GuardedConnector(
        allow_private=allow_private,
        resolver=_GuardedResolver(inner, allow_private=allow_private),
        **connector_kwargs,
    )
