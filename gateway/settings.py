"""One typed settings object, read once from the ``OTPGATE_*`` variables.

Each setting is declared once, as a :class:`Setting` in the body of
:class:`Settings`: its variable, its default (text read as if the variable
held it, or derived from the settings declared above it), a help line, a
converter whose return type is the attribute's type, and whether it is secret.
The registry :data:`SETTINGS`, the values of a :class:`Settings` and README's
settings table (``python -m gateway.settings --markdown``, checked by a test)
all come from those declarations.  A bad value raises
:class:`~gateway.errors.ConfigError` with one line that names the variable, so
``otpgate serve`` can stop with a clear message.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar, overload
from urllib.parse import urlsplit

from .errors import ConfigError
from .validation import is_domain_name, is_e164, split_mail_address

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Address:
    """A host and port to listen on."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The most addresses or networks one proxies setting may list.
MAX_PROXIES = 64
#: The most X-Forwarded-For hops read, from the right.
MAX_FORWARDED_HOPS = 32


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The addresses of the fronts (reverse proxies, load balancers) a listener believes.

    Empty, it trusts nobody: every client is the address that connected.
    """

    networks: tuple[Network, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __str__(self) -> str:
        return ", ".join(str(n) for n in self.networks) or "none"

    def trusts(self, address: str) -> bool:
        """Whether *address* (an IP address as text) is one of the fronts."""
        if not self.networks:
            return False
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.networks)

    def client(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """The client a request from *peer* with these ``X-Forwarded-For`` headers came from.

        Only a trusted *peer*'s header is read, from the right (each front appends
        the address it was reached from): the first address that is not a front's
        is the client.  A hop that is not an IP address ends the walk at the hop
        before it, so a client can never pass itself off as someone else by
        writing the header itself.
        """
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = ",".join(forwarded_for).split(",")[-MAX_FORWARDED_HOPS:]
        client = peer
        for hop in reversed(hops):
            ip = _forwarded_ip(hop.strip())
            if ip is None:
                break
            client = str(ip)
            if not any(ip in network for network in self.networks):
                break
        return client


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _forwarded_ip(hop: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A forwarded hop's address: ``1.2.3.4``, ``1.2.3.4:5678``, ``::1`` or ``[::1]:5678``."""
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    return _ip(hop)


def parse_proxies(value: str) -> TrustedProxies:
    """Parse a list of IP addresses or networks (``10.0.0.0/8``), separated by commas or spaces."""
    items = [item for item in re.split(r"[,\s]+", value) if item]
    if len(items) > MAX_PROXIES:
        raise ValueError(f"{len(items)} entries; at most {MAX_PROXIES}")
    networks: list[Network] = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError:
            raise ValueError(
                f"{item!r} is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/24; "
                "a network has no bits set past its prefix)"
            ) from None
    return TrustedProxies(tuple(networks))


#: No front trusted (the default).
NO_PROXIES = TrustedProxies()


def _no_proxies(settings: Settings) -> TrustedProxies:
    return NO_PROXIES


class Setting(Generic[T_co]):
    """One ``OTPGATE_*`` variable, declared as an attribute of :class:`Settings`.

    On the class it is this declaration; on a settings object it is the value,
    of the converter's type.  ``shown`` is what README's default column says.
    """

    __slots__ = ("attr", "convert", "default", "help", "name", "secret", "shown")

    @overload
    def __init__(
        self,
        name: str,
        convert: Callable[[str], T_co],
        *,
        default: str,
        help: str,
        secret: bool = False,
    ) -> None: ...

    @overload
    def __init__(
        self,
        name: str,
        convert: Callable[[str], T_co],
        *,
        derive: Callable[[Settings], T_co],
        shown: str,
        help: str,
        secret: bool = False,
    ) -> None: ...

    def __init__(
        self,
        name: str,
        convert: Callable[[str], T_co],
        *,
        default: str | None = None,
        derive: Callable[[Settings], T_co] | None = None,
        shown: str | None = None,
        help: str,
        secret: bool = False,
    ) -> None:
        self.name = name
        self.convert = convert
        #: The text read when the variable is unset, or how to derive the value.
        self.default: str | Callable[[Settings], T_co]
        if derive is not None and shown is not None:
            self.default, self.shown = derive, shown
        elif default is not None:
            self.default, self.shown = default, f"`{default}`"
        else:
            raise TypeError(f"{name}: declare a default, or a derived one and how it is shown")
        self.help = help
        self.secret = secret
        self.attr = ""

    def __set_name__(self, owner: type[Settings], attr: str) -> None:
        self.attr = attr

    @overload
    def __get__(self, obj: None, owner: type[Settings] | None = None) -> Setting[T_co]: ...

    @overload
    def __get__(self, obj: Settings, owner: type[Settings] | None = None) -> T_co: ...

    def __get__(
        self, obj: Settings | None, owner: type[Settings] | None = None
    ) -> Setting[T_co] | T_co:
        # A settings object keeps its values in its __dict__, which Python
        # looks in before this (non-data) descriptor: only a value not read
        # yet gets here.
        if obj is None:
            return self
        raise AttributeError(f"{self.attr}: {self.name} has not been read yet")

    def read(self, env: Mapping[str, str], settings: Settings) -> T_co:
        """This setting's value from *env*, the settings declared above it already read."""
        text = env.get(self.name, "").strip()
        if not text:
            if not isinstance(self.default, str):
                return self.default(settings)
            text = self.default
        try:
            return self.convert(text)
        except ValueError as exc:
            raise ConfigError(f"{self.name}: {exc}") from None


def optional(
    name: str, convert: Callable[[str], T], *, help: str, secret: bool = False
) -> Setting[T | None]:
    """A setting that is None unless its variable is set."""
    return Setting[T | None](name, convert, derive=_unset, shown="none", help=help, secret=secret)


def _unset(settings: Settings) -> None:
    return None


def parse_address(value: str) -> Address:
    """Parse ``HOST:PORT`` or ``[V6]:PORT``."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not HOST:PORT (for example 127.0.0.1:8080)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError("write an IPv6 address in brackets, as [::1]:8080")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port {port_text!r} is not a number from 1 to 65535")
    if not all(c.isalnum() or c in ".-:" for c in host):
        raise ValueError(f"{host!r} is not a host name or IP address")
    return Address(host, int(port_text))


def parse_database_url(value: str) -> str:
    """Turn the contract's database URL into SQLAlchemy's async form."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise ValueError(f"{_redact_url(value)!r} is not a URL")
    scheme = scheme.lower()
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        if not rest.startswith("/") or rest == "/":
            raise ValueError("write a SQLite URL as sqlite:///PATH")
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        if not urlsplit(f"{scheme}://{rest}").hostname and "host=" not in rest:
            raise ValueError("the PostgreSQL URL has no host")
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(
        f"unknown scheme {scheme!r}; use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    )


def _redact_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.password:
        return value.replace(parts.password, "***")
    return value


def _domain(value: str) -> str:
    value = value.lower().rstrip(".")
    if not is_domain_name(value):
        raise ValueError(f"{value!r} is not a domain name")
    return value


def _seconds(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 86400:
        raise ValueError(f"{value!r} is not a number of seconds from 1 to 86400")
    return int(value)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def conv(value: str) -> int:
        if not value.isdigit() or not low <= int(value) <= high:
            raise ValueError(f"{value!r} is not a whole number from {low} to {high}")
        return int(value)

    return conv


def _readable_file(value: str) -> Path:
    path = Path(value)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    return path


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not 0 or 1")


def _choice(*choices: str) -> Callable[[str], str]:
    def conv(value: str) -> str:
        if value.lower() not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value.lower()

    return conv


def _admin_key(value: str) -> str:
    if len(value) < 24:
        raise ValueError("the admin key must be at least 24 characters long")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


def _relay(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("write the relay as smtp://HOST:PORT or smtps://USER:PASS@HOST:PORT")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError:
        raise ValueError("the relay's port is not a number from 1 to 65535") from None
    return value


def _account_sid(value: str) -> str:
    if not (
        len(value) == 34
        and value.startswith("AC")
        and all(c in "0123456789abcdef" for c in value[2:].lower())
    ):
        raise ValueError("a Twilio account SID is AC and 32 hexadecimal digits")
    return value


_SHARED_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def _shared_keys(value: str) -> tuple[tuple[str, str], ...]:
    """``ID=SECRET[,ID=SECRET...]``; errors name the entry's position, never its secret."""
    keys: dict[str, str] = {}
    for n, entry in enumerate(value.split(","), 1):
        key_id, eq, secret = (part.strip() for part in entry.partition("="))
        if not eq or not _SHARED_KEY_ID.match(key_id):
            raise ValueError(f"entry {n} is not KEY_ID=SECRET (the id as Twilio shows it)")
        if not 16 <= len(secret) <= 512 or not secret.isprintable() or " " in secret:
            raise ValueError(f"the secret of {key_id} must be 16 to 512 printable characters")
        if key_id in keys:
            raise ValueError(f"{key_id} is listed twice")
        keys[key_id] = secret
    return tuple(keys.items())


def _e164(value: str) -> str:
    if not is_e164(value):
        raise ValueError(f"{value!r} is not a number in E.164 form, such as +14155550100")
    return value


def _mailbox(value: str) -> str:
    parts = split_mail_address(value)
    if parts is None:
        raise ValueError(f"{value!r} is not an email address")
    _domain(parts[1])
    return value


def _sqlite_in_data_dir(settings: Settings) -> str:
    return f"sqlite+aiosqlite:///{(settings.data_dir / 'otpgate.db').resolve()}"


class Settings:
    """The gateway's configuration; build it with :meth:`from_env`.

    Read-only once built.  Secret settings are left out of its ``repr``.
    """

    data_dir = Setting(
        "OTPGATE_DATA_DIR",
        Path,
        default="./otpgate-data",
        help="where the embedded database and the generated master key live",
    )
    database_url = Setting(
        "OTPGATE_DATABASE_URL",
        parse_database_url,
        derive=_sqlite_in_data_dir,
        shown="SQLite file in the data dir",
        help="`sqlite:///PATH` or `postgresql://USER@HOST:PORT/DB`",
        secret=True,
    )
    http = Setting(
        "OTPGATE_HTTP",
        parse_address,
        default="127.0.0.1:8080",
        help="HTTP listen address (`HOST:PORT`, `[V6]:PORT`)",
    )
    http_header_timeout = Setting(
        "OTPGATE_HTTP_HEADER_TIMEOUT",
        _bounded(1, 3600),
        default="10",
        help="seconds an HTTP connection may take to send a request's headers, from its "
        "opening or the previous answer (an idle keep-alive connection closes then too)",
    )
    http_body_timeout = Setting(
        "OTPGATE_HTTP_BODY_TIMEOUT",
        _bounded(1, 3600),
        default="30",
        help="seconds an HTTP request's body may take to arrive (then 408)",
    )
    http_max_connections_per_client = Setting(
        "OTPGATE_HTTP_MAX_CONNECTIONS_PER_CLIENT",
        _bounded(1, 100000),
        default="128",
        help="open HTTP connections from one client address (more: 429 and closed)",
    )
    http_trusted_proxies = Setting(
        "OTPGATE_HTTP_TRUSTED_PROXIES",
        parse_proxies,
        derive=_no_proxies,
        shown="none",
        help="IP addresses or networks of HTTP fronts (Caddy, a load balancer) whose "
        "`X-Forwarded-For` names the client: their connections are not capped per client, "
        "and failed authentications count against the forwarded address",
    )
    auth_failures_per_minute = Setting(
        "OTPGATE_AUTH_FAILURES_PER_MINUTE",
        _bounded(1, 1000000),
        default="10",
        help="failed authentications (API keys, submit links, sign-ins) one client address "
        "may make in a burst, refilled over a minute; more are held and answered 429",
    )
    smtp = Setting(
        "OTPGATE_SMTP", parse_address, default="127.0.0.1:2525", help="SMTP listen address"
    )
    inbox_domain = Setting(
        "OTPGATE_INBOX_DOMAIN",
        _domain,
        default="inbox.localhost",
        help="domain of the per-credential inbox addresses",
    )
    master_key_file = Setting(
        "OTPGATE_MASTER_KEY_FILE",
        Path,
        derive=lambda s: s.data_dir / "master.key",
        shown="`<data dir>/master.key`",
        help="key-encryption key ring",
    )
    admin_key = optional(
        "OTPGATE_ADMIN_KEY",
        _admin_key,
        help="when set, this exact string (24+ characters) is accepted as the admin API key",
        secret=True,
    )
    public_url = Setting(
        "OTPGATE_PUBLIC_URL",
        _http_url,
        derive=lambda s: f"http://{s.http}",
        shown="`http://<OTPGATE_HTTP>`",
        help="the external base URL, used to check Twilio signatures and to build links",
    )
    twilio_auth_token = optional(
        "OTPGATE_TWILIO_AUTH_TOKEN",
        str,
        help="checks `X-Twilio-Signature`; without it (or shared keys) the SMS webhook answers 503",
        secret=True,
    )
    twilio_shared_keys = Setting(
        "OTPGATE_TWILIO_SHARED_KEYS",
        _shared_keys,
        derive=lambda s: (),
        shown="none",
        help="Twilio webhook SharedKeys as `KEY_ID=SECRET`, comma-separated: a text whose "
        "`X-Twilio-Webhooks-Signature-Settings` names one is checked with it "
        "(list the old and the new key while rotating)",
        secret=True,
    )
    code_ttl = Setting(
        "OTPGATE_CODE_TTL",
        _seconds,
        default="300",
        help="seconds an undelivered received code is kept before it is destroyed",
    )
    interaction_ttl = Setting(
        "OTPGATE_INTERACTION_TTL",
        _seconds,
        default="300",
        help="seconds a user-driven code request stays open",
    )
    allow_private_targets = Setting(
        "OTPGATE_ALLOW_PRIVATE_TARGETS",
        _flag,
        default="0",
        help="`1` lets webhook and forwarding targets be loopback or private addresses",
    )
    audit = Setting(
        "OTPGATE_AUDIT",
        _flag,
        default="1",
        help="`0` turns the audit trail off (kept only to measure what it costs; leave it on)",
    )
    smtp_relay = optional(
        "OTPGATE_SMTP_RELAY",
        _relay,
        help="`smtp://HOST:PORT` (or `smtps://USER:PASS@HOST:PORT`) "
        "through which email forwards are sent",
        secret=True,
    )
    smtp_hostname = Setting(
        "OTPGATE_SMTP_HOSTNAME",
        _domain,
        derive=lambda s: s.inbox_domain,
        shown="the inbox domain",
        help="the name the SMTP listener greets with",
    )
    smtp_tls_cert = optional(
        "OTPGATE_SMTP_TLS_CERT",
        _readable_file,
        help="PEM certificate chain for SMTP STARTTLS (with `OTPGATE_SMTP_TLS_KEY`)",
    )
    smtp_tls_key = optional(
        "OTPGATE_SMTP_TLS_KEY", _readable_file, help="PEM private key for SMTP STARTTLS"
    )
    smtp_max_size = Setting(
        "OTPGATE_SMTP_MAX_SIZE",
        _bounded(1024, 64 * 1024 * 1024),
        default="1048576",
        help="largest accepted mail in bytes (larger: 552)",
    )
    smtp_max_recipients = Setting(
        "OTPGATE_SMTP_MAX_RECIPIENTS",
        _bounded(1, 100),
        default="10",
        help="recipients accepted per mail (more: 452)",
    )
    smtp_max_sessions = Setting(
        "OTPGATE_SMTP_MAX_SESSIONS",
        _bounded(1, 10000),
        default="200",
        help="concurrent SMTP sessions (more: 421)",
    )
    smtp_idle_timeout = Setting(
        "OTPGATE_SMTP_IDLE_TIMEOUT",
        _bounded(1, 3600),
        default="30",
        help="seconds an SMTP session may stay silent",
    )
    smtp_max_sessions_per_client = Setting(
        "OTPGATE_SMTP_MAX_SESSIONS_PER_CLIENT",
        _bounded(1, 10000),
        default="20",
        help="concurrent SMTP sessions from one client address (more: 421)",
    )
    smtp_proxy_protocol = Setting(
        "OTPGATE_SMTP_PROXY_PROTOCOL",
        parse_proxies,
        derive=_no_proxies,
        shown="none",
        help="IP addresses or networks of SMTP fronts (HAProxy with `send-proxy`) that open each "
        "session with a PROXY protocol header; its source address is the client for the "
        "per-client limits and the log. A connection from them without one is closed",
    )
    smtp_new_client_share = Setting(
        "OTPGATE_SMTP_NEW_CLIENT_SHARE",
        _bounded(0, 90),
        default="20",
        help="percent of `OTPGATE_SMTP_MAX_SESSIONS` kept for client addresses holding none",
    )
    smtp_session_lifetime = Setting(
        "OTPGATE_SMTP_SESSION_LIFETIME",
        _bounded(1, 86400),
        default="300",
        help="seconds an SMTP session may last in all (then 421; a mail being stored finishes)",
    )
    smtp_max_idle_commands = Setting(
        "OTPGATE_SMTP_MAX_IDLE_COMMANDS",
        _bounded(1, 1000),
        default="20",
        help="NOOP, RSET, HELP, VRFY and EXPN an SMTP session may send without a mail "
        "accepted in between (more: 421)",
    )
    smtp_worker = Setting(
        "OTPGATE_SMTP_WORKER",
        _flag,
        default="1",
        help="`1` parses, extracts and stores mail and texts in a second process "
        "(another core); `0` in the gateway's own",
    )
    twilio_account_sid = optional(
        "OTPGATE_TWILIO_ACCOUNT_SID",
        _account_sid,
        help="when set, inbound texts must carry this `AccountSid`; with the auth token, "
        "lets the gateway buy numbers and send SMS forwards",
    )
    twilio_api_url = Setting(
        "OTPGATE_TWILIO_API_URL",
        _http_url,
        default="https://api.twilio.com",
        help="base URL of Twilio's REST API (change it only to test against a stand-in)",
    )
    twilio_sms_from = optional(
        "OTPGATE_TWILIO_SMS_FROM",
        _e164,
        help="number SMS forwards are sent from; default: the credential's own number",
    )
    forward_from = Setting(
        "OTPGATE_FORWARD_FROM",
        _mailbox,
        derive=lambda s: f"otpgate@{s.inbox_domain}",
        shown="none",
        help="From address of email forwards; default: `otpgate@<inbox domain>`",
    )
    sms_rate_limit = Setting(
        "OTPGATE_SMS_RATE_LIMIT",
        _bounded(1, 100_000),
        default="60",
        help="texts accepted per minute for one receiving number or device (more: 429)",
    )
    log_format = Setting(
        "OTPGATE_LOG_FORMAT",
        _choice("text", "json"),
        default="text",
        help="`text` for people, `json` for one JSON object per line",
    )
    log_level = Setting(
        "OTPGATE_LOG_LEVEL",
        _choice("debug", "info", "warning", "error"),
        default="info",
        help="`debug`, `info`, `warning` or `error`",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every ``OTPGATE_*`` variable; raise ConfigError on the first bad one."""
        env = os.environ if env is None else env
        settings = cls.__new__(cls)
        values = vars(settings)
        for spec in SETTINGS:  # in declaration order: a derived default reads those above it
            values[spec.attr] = spec.read(env, settings)
        if (settings.smtp_tls_cert is None) != (settings.smtp_tls_key is None):
            raise ConfigError("OTPGATE_SMTP_TLS_CERT and OTPGATE_SMTP_TLS_KEY go together")
        return settings

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash(tuple(vars(self).values()))

    def __repr__(self) -> str:
        shown = (f"{s.attr}={vars(self).get(s.attr)!r}" for s in SETTINGS if not s.secret)
        return f"Settings({', '.join(shown)})"


#: Every setting, in the order README lists them.
SETTINGS: tuple[Setting[object], ...] = tuple(
    v for v in vars(Settings).values() if isinstance(v, Setting)
)

#: Variables of otpgate's own clients (the SDK's and ``otpgate mcp``'s), set beside a
#: gateway's in many shells: known, though the gateway does not read them.
CLIENT_VARIABLES = frozenset({"OTPGATE_URL", "OTPGATE_API_KEY", "OTPGATE_MCP_REVEAL"})
_KNOWN = frozenset(s.name for s in SETTINGS) | CLIENT_VARIABLES


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """``OTPGATE_*`` names in *env* that no setting declares (likely typos)."""
    return sorted(k for k in env if k.startswith("OTPGATE_") and k not in _KNOWN)


def markdown_table() -> str:
    """README's settings table: one row per setting, as declared."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{s.name}` | {s.shown} | {s.help} |" for s in SETTINGS]
    return "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m gateway.settings --markdown`` prints README's settings table."""
    parser = argparse.ArgumentParser(prog="python -m gateway.settings")
    parser.add_argument(
        "--markdown", action="store_true", required=True, help="print README's settings table"
    )
    parser.parse_args(argv)
    print(markdown_table(), end="")


if __name__ == "__main__":
    main()
