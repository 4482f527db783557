"""Fronts: the gateway behind an HTTP reverse proxy and an SMTP load balancer.

Behind Caddy every HTTP connection comes from Caddy's address and behind
HAProxy every SMTP session from HAProxy's, so the per-client limits would
cap the whole fleet as one client.  A front named in
``OTPGATE_HTTP_TRUSTED_PROXIES`` is not capped and its ``X-Forwarded-For``
names the client; one named in ``OTPGATE_SMTP_PROXY_PROTOCOL`` opens each
session with a PROXY protocol header that does.  Pinned with raw clients,
then with the real Caddy and HAProxy in front.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api.auth import AUTH_FAILURES
from gateway.errors import ConfigError
from gateway.settings import Settings, parse_proxies

from .helpers import (
    Served,
    bearer,
    free_port,
    need_tool,
    otp_mail,
    owner_and_credential,
    running,
    served_on_loopback,
    wait_for_port,
)

# --- the setting -------------------------------------------------------------


def test_proxies_are_addresses_or_networks() -> None:
    trusted = parse_proxies("10.0.0.0/8, 192.0.2.7 ::1\t2001:db8::/32")
    assert str(trusted) == "10.0.0.0/8, 192.0.2.7/32, ::1/128, 2001:db8::/32"
    assert trusted.trusts("10.1.2.3") and trusted.trusts("192.0.2.7")
    assert trusted.trusts("::1") and trusted.trusts("2001:db8::5")
    assert trusted.trusts("::ffff:10.9.9.9")  # an IPv4 client on a dual-stack socket
    assert not trusted.trusts("192.0.2.8") and not trusted.trusts("unknown")
    assert not parse_proxies("")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("caddy", "'caddy' is not an IP address or network"),
        ("10.0.0.1/8", "no bits set past its prefix"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not"),
        (",".join(f"10.0.0.{i}" for i in range(65)), "at most 64"),
    ],
)
@pytest.mark.parametrize(
    "variable", ["OTPGATE_HTTP_TRUSTED_PROXIES", "OTPGATE_SMTP_PROXY_PROTOCOL"]
)
def test_a_bad_proxies_setting_stops_the_start_naming_it(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"OTPGATE_DATA_DIR": str(tmp_path), variable: value})
    assert str(raised.value).startswith(f"{variable}: ") and says in str(raised.value)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # Not a front: what it writes in the header is its own business.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        # A front: the address it appended.
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        # A client that writes the header itself is still the address the front saw.
        ("10.0.0.2", ["1.1.1.1, 198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["1.1.1.1", "198.51.100.1"], "198.51.100.1"),
        # Two fronts: the first address from the right that is not a front's.
        ("10.0.0.2", ["198.51.100.1, 10.0.0.3"], "198.51.100.1"),
        # Ports and brackets, as some fronts write them.
        ("10.0.0.2", ["198.51.100.1:5123"], "198.51.100.1"),
        ("10.0.0.2", ["[2001:db8::7]:5123"], "2001:db8::7"),
        ("10.0.0.2", ["2001:db8::7"], "2001:db8::7"),
        # A hop that is not an address ends the walk: the last good one is the client.
        ("10.0.0.2", ["198.51.100.1, unknown"], "10.0.0.2"),
        ("10.0.0.2", ["garbage, 198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["198.51.100.1, 10.0.0.3, x"], "10.0.0.2"),
        # Only fronts: the leftmost of them.
        ("10.0.0.2", ["10.0.0.4, 10.0.0.3"], "10.0.0.4"),
        # No header from a front: the front.
        ("10.0.0.2", [], "10.0.0.2"),
    ],
)
def test_the_client_is_the_first_address_from_the_right_that_is_not_a_front(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert parse_proxies("10.0.0.0/24").client(peer, forwarded) == client


def test_a_long_forwarded_chain_is_read_only_so_far() -> None:
    trusted = parse_proxies("10.0.0.0/8")
    fronts = ", ".join(f"10.0.{i // 250}.{i % 250 + 1}" for i in range(1000))
    # 1,000 front hops: the walk stops after 32 of them.
    assert trusted.client("10.0.0.1", [f"198.51.100.1, {fronts}"]).startswith("10.")


def test_the_compose_replicas_trust_exactly_their_fronts() -> None:
    """compose.yaml trusts the front network it pins, and HAProxy sends the header (its
    health checks too) that the replicas then require."""
    import yaml

    deploy = Path(__file__).resolve().parent.parent / "deploy"
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    (subnet,) = [c["subnet"] for c in compose["networks"]["front"]["ipam"]["config"]]
    default = re.fullmatch(r"\$\{OTPGATE_FRONT_SUBNET:-(.+)\}", subnet)
    assert default is not None
    for replica in ("gateway-a", "gateway-b"):
        env = compose["services"][replica]["environment"]
        assert env["OTPGATE_HTTP_TRUSTED_PROXIES"] == env["OTPGATE_SMTP_PROXY_PROTOCOL"] == subnet
        assert "front" in compose["services"][replica]["networks"]
    assert str(parse_proxies(default.group(1))) == "172.30.53.0/24"
    haproxy = (deploy / "haproxy.cfg").read_text()
    (servers,) = re.findall(r"^\s+default-server (.+)$", haproxy, re.M)
    assert {"send-proxy", "check-send-proxy", "check"} <= set(servers.split())


# --- HTTP --------------------------------------------------------------------


async def _get(port: int, source: str, path: str, **headers: str) -> int:
    """One request from *source* on a connection of its own; the status."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(f"http://127.0.0.1:{port}{path}", headers=headers) as resp,
    ):
        await resp.read()
        return resp.status


async def test_a_trusted_front_is_not_capped_per_client(tmp_path: Path) -> None:
    """A front holds more connections than one client may; an address that is not a front
    is still capped, whatever it writes in X-Forwarded-For."""
    async with served_on_loopback(
        tmp_path,
        OTPGATE_HTTP_MAX_CONNECTIONS_PER_CLIENT="3",
        OTPGATE_HTTP_TRUSTED_PROXIES="127.0.0.3",
    ) as served:
        port = served.port
        front = [
            await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.3", 0))
            for _ in range(8)
        ]
        for reader, writer in front:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 ")
        other = [
            await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.4", 0))
            for _ in range(3)
        ]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=("127.0.0.4", 0)
        )
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n")
        refused = await asyncio.wait_for(reader.read(), 5)
        assert refused.startswith(b"HTTP/1.1 429 ")
        for _, w in [*front, *other, (reader, writer)]:
            w.close()


async def test_failed_keys_count_against_the_forwarded_client(tmp_path: Path) -> None:
    """Through a front, one client's wrong keys exhaust that client's allowance only; a client
    that is not behind a front cannot dodge its own by writing X-Forwarded-For."""
    async with served_on_loopback(
        tmp_path,
        OTPGATE_HTTP_TRUSTED_PROXIES="127.0.0.3",
        OTPGATE_AUTH_FAILURES_PER_MINUTE="3",
    ) as served:
        served.gateway.app[AUTH_FAILURES].hold = 0.0
        port = served.port
        wrong = bearer("otpg_wrong")

        async def statuses(source: str, forwarded: str, count: int) -> list[int]:
            return [
                await _get(
                    port, source, "/v1/credentials", **wrong, **{"X-Forwarded-For": forwarded}
                )
                for _ in range(count)
            ]

        assert await statuses("127.0.0.3", "198.51.100.1", 5) == [401, 401, 401, 429, 429]
        # Another client behind the same front has its whole allowance.
        assert await statuses("127.0.0.3", "198.51.100.2", 3) == [401, 401, 401]
        # Not a front: each request names another client, and all count as its own.
        spoofed = [
            await _get(
                port,
                "127.0.0.4",
                "/v1/credentials",
                **wrong,
                **{"X-Forwarded-For": f"198.51.100.{i}"},
            )
            for i in range(10, 15)
        ]
        assert spoofed == [401, 401, 401, 429, 429]


# --- SMTP --------------------------------------------------------------------


class Smtp:
    """A raw SMTP conversation, from a chosen loopback address."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, source: str, first: bytes = b"") -> Smtp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        if first:
            writer.write(first)
        return cls(reader, writer)

    async def reply(self) -> bytes:
        """The next whole reply (its last line), or b"" when the server hung up."""
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 10)
            if not line or line[3:4] != b"-":
                return line

    async def say(self, line: bytes) -> bytes:
        self.writer.write(line + b"\r\n")
        return await self.reply()

    def close(self) -> None:
        self.writer.close()


def proxy_v1(source: str, port: int = 40000) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 {port} 25\r\n".encode()


async def _inbox(served: Served) -> tuple[str, dict[str, Any], str]:
    async with aiohttp.ClientSession(served.url) as http:
        key, cred = await owner_and_credential(http)
    return key, cred, cred["inbox"]


async def _mail(smtp: Smtp, to: str, code: str) -> bytes:
    assert (await smtp.say(b"EHLO sender.example")).startswith(b"250 ")
    assert (await smtp.say(b"MAIL FROM:<no-reply@service.example>")).startswith(b"250 ")
    assert (await smtp.say(f"RCPT TO:<{to}>".encode())).startswith(b"250 ")
    assert (await smtp.say(b"DATA")).startswith(b"354 ")
    return await smtp.say(otp_mail(code).as_bytes().replace(b"\n", b"\r\n") + b"\r\n.")


async def _code(served: Served, key: str, cred_id: str) -> str | None:
    async with (
        aiohttp.ClientSession(served.url) as http,
        http.get(f"/v1/credentials/{cred_id}/code?wait=5", headers=bearer(key)) as resp,
    ):
        return (await resp.json())["code"] if resp.status == 200 else None


async def test_a_front_s_proxy_header_names_the_client_of_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Sessions from a front are capped by the client its PROXY header names, the mail they
    bring is taken and handed out, and the log names that client."""
    caplog.set_level(logging.INFO, logger="otpgate.smtp")
    async with served_on_loopback(
        tmp_path,
        smtp=True,
        OTPGATE_SMTP_PROXY_PROTOCOL="127.0.0.3",
        OTPGATE_SMTP_MAX_SESSIONS_PER_CLIENT="2",
    ) as served:
        assert served.smtp_port is not None
        port = served.smtp_port
        key, cred, inbox = await _inbox(served)
        held = [await Smtp.open(port, "127.0.0.3", proxy_v1("198.51.100.7")) for _ in range(2)]
        for session in held:
            assert (await session.reply()).startswith(b"220 ")
        # A third session for the same client is one too many; another client's is not.
        third = await Smtp.open(port, "127.0.0.3", proxy_v1("198.51.100.7"))
        assert (await third.reply()).startswith(b"421 4.3.2 ")
        assert await third.reply() == b""
        other = await Smtp.open(port, "127.0.0.3", proxy_v1("198.51.100.8", 40001))
        assert (await other.reply()).startswith(b"220 ")
        assert (await _mail(other, inbox, "418277")).startswith(b"250 ")
        assert await _code(served, key, cred["id"]) == "418277"
        accepted = [r for r in caplog.records if r.getMessage() == "accepted a mail"]
        assert [getattr(r, "client", None) for r in accepted] == ["198.51.100.8"]
        for session in [*held, third, other]:
            session.close()


async def test_a_front_must_send_the_header_and_nobody_else_may(tmp_path: Path) -> None:
    """A front's session without a PROXY header is closed before the greeting; an address
    that is not a front gets the greeting at once, and a PROXY line from it is a bad command."""
    async with served_on_loopback(
        tmp_path, smtp=True, OTPGATE_SMTP_PROXY_PROTOCOL="127.0.0.3"
    ) as served:
        assert served.smtp_port is not None
        bare = await Smtp.open(served.smtp_port, "127.0.0.3", b"EHLO sender.example\r\n")
        assert await bare.reply() == b""
        stranger = await Smtp.open(served.smtp_port, "127.0.0.4")
        assert (await stranger.reply()).startswith(b"220 ")
        assert (await stranger.say(proxy_v1("198.51.100.7").strip())).startswith(b"5")
        assert (await stranger.say(b"QUIT")).startswith(b"221 ")
        bare.close()
        stranger.close()


# --- the real fronts -----------------------------------------------------------


async def _listening(port: int, log: Path) -> None:
    """Wait, off the event loop the gateway runs on, until a front listens on *port*."""
    try:
        await asyncio.to_thread(wait_for_port, port, 15)
    except AssertionError:
        print(await asyncio.to_thread(log.read_text, errors="replace"))
        raise


@contextlib.asynccontextmanager
async def haproxy_in_front(tmp_path: Path, smtp_port: int) -> AsyncIterator[int]:
    """HAProxy as deploy/haproxy.cfg runs it (TCP, SMTP health checks), sending PROXY headers."""
    haproxy = need_tool("haproxy", "haproxy")
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        textwrap.dedent(
            f"""\
            defaults
                mode tcp
                timeout connect 5s
                timeout client 30s
                timeout server 30s
            frontend smtp
                bind 127.0.0.1:{port}
                default_backend gateways
            backend gateways
                option smtpchk EHLO smtp-front.otpgate.internal
                default-server check check-send-proxy inter 200ms fall 2 rise 2
                server gateway 127.0.0.1:{smtp_port} send-proxy
            """
        )
    )
    log = tmp_path / "haproxy.log"
    with running([haproxy, "-db", "-f", str(config)], log):
        await _listening(port, log)
        yield port


async def test_mail_through_haproxy_is_counted_per_sender(tmp_path: Path) -> None:
    """The real HAProxy with send-proxy: its health checks pass, mail goes through, and the
    per-client cap counts each sender behind it, not HAProxy."""
    async with served_on_loopback(
        tmp_path,
        smtp=True,
        OTPGATE_SMTP_PROXY_PROTOCOL="127.0.0.1",
        OTPGATE_SMTP_MAX_SESSIONS_PER_CLIENT="2",
    ) as served:
        assert served.smtp_port is not None
        key, cred, inbox = await _inbox(served)
        async with haproxy_in_front(tmp_path, served.smtp_port) as port:
            # Long enough for several failed checks (200 ms apart, two mark it down).
            await asyncio.sleep(1.5)
            held = [await Smtp.open(port, "127.0.0.5") for _ in range(2)]
            for session in held:
                assert (await session.reply()).startswith(b"220 ")
            over = await Smtp.open(port, "127.0.0.5")
            assert (await over.reply()).startswith(b"421 4.3.2 ")
            sender = await Smtp.open(port, "127.0.0.6")
            assert (await sender.reply()).startswith(b"220 ")
            assert (await _mail(sender, inbox, "550913")).startswith(b"250 ")
            assert await _code(served, key, cred["id"]) == "550913"
            for session in [*held, over, sender]:
                session.close()


@contextlib.asynccontextmanager
async def caddy_in_front(tmp_path: Path, http_port: int) -> AsyncIterator[int]:
    """Caddy on plain HTTP, proxying to the gateway as deploy/Caddyfile does."""
    caddy = need_tool("caddy", "caddy")
    port = free_port()
    config = tmp_path / "Caddyfile"
    config.write_text(
        textwrap.dedent(
            f"""\
            {{
                admin off
                auto_https off
            }}
            http://127.0.0.1:{port} {{
                reverse_proxy 127.0.0.1:{http_port}
            }}
            """
        )
    )
    log = tmp_path / "caddy.log"
    env_home = tmp_path / "caddy-home"
    env_home.mkdir()
    with running(
        [
            "env",
            f"HOME={env_home}",
            f"XDG_DATA_HOME={env_home}",
            f"XDG_CONFIG_HOME={env_home}",
            caddy,
            "run",
            "--config",
            str(config),
            "--adapter",
            "caddyfile",
        ],
        log,
    ):
        await _listening(port, log)
        yield port


async def _long_polls(port: int, key: str, cred_id: str, count: int) -> list[int]:
    async def one() -> int:
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.get(
                f"http://127.0.0.1:{port}/v1/credentials/{cred_id}/code?wait=2",
                headers=bearer(key),
            ) as resp,
        ):
            await resp.read()
            return resp.status

    return list(await asyncio.gather(*(one() for _ in range(count))))


@pytest.mark.parametrize("trusted", [False, True])
async def test_agents_behind_caddy_are_not_one_capped_client(tmp_path: Path, trusted: bool) -> None:
    """The real Caddy in front: more agents wait at once than one client may hold connections.
    Untrusted, Caddy is one client and the agents past the cap get 429; trusted, all wait, and
    wrong keys count against the address Caddy forwards, not Caddy's."""
    env = {"OTPGATE_HTTP_MAX_CONNECTIONS_PER_CLIENT": "4", "OTPGATE_AUTH_FAILURES_PER_MINUTE": "3"}
    if trusted:
        env["OTPGATE_HTTP_TRUSTED_PROXIES"] = "127.0.0.1"
    async with served_on_loopback(tmp_path, **env) as served:
        served.gateway.app[AUTH_FAILURES].hold = 0.0
        key, cred, _ = await _inbox(served)
        async with caddy_in_front(tmp_path, served.port) as port:
            statuses = await _long_polls(port, key, cred["id"], 10)
            wrong = bearer("otpg_wrong")
            guesser = [await _get(port, "127.0.0.7", "/v1/credentials", **wrong) for _ in range(4)]
            other = await _get(port, "127.0.0.8", "/v1/credentials", **wrong)
    assert guesser == [401, 401, 401, 429]
    if trusted:
        assert statuses == [204] * 10
        assert other == 401
    else:
        assert 429 in statuses and statuses.count(204) <= 4
        assert other == 429  # Caddy's address is everyone's
