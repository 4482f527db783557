"""One typed settings object, read once from the ``OTPGATE_*`` variables.

Every setting is declared in :data:`SETTINGS` with its default and a help line;
the README's settings table is checked against that registry by a test.  A bad
value raises :class:`~gateway.errors.ConfigError` with one line that names the
variable, so ``otpgate serve`` can stop with a clear message.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class Address:
    """A host and port to listen on."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: its name, default (as text) and help line."""

    name: str
    default: str | None
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "OTPGATE_DATA_DIR",
        "./otpgate-data",
        "where the embedded database and the generated master key live",
    ),
    Setting(
        "OTPGATE_DATABASE_URL",
        None,
        "`sqlite:///PATH` or `postgresql://USER@HOST:PORT/DB`; "
        "default: a SQLite file in the data dir",
        secret=True,
    ),
    Setting("OTPGATE_HTTP", "127.0.0.1:8080", "HTTP listen address"),
    Setting("OTPGATE_SMTP", "127.0.0.1:2525", "SMTP listen address"),
    Setting(
        "OTPGATE_INBOX_DOMAIN", "inbox.localhost", "domain of the per-credential inbox addresses"
    ),
    Setting(
        "OTPGATE_MASTER_KEY_FILE", None, "key-encryption key ring; default: `<data dir>/master.key`"
    ),
    Setting(
        "OTPGATE_ADMIN_KEY",
        None,
        "when set, this exact string is accepted as the admin API key",
        secret=True,
    ),
    Setting(
        "OTPGATE_PUBLIC_URL",
        None,
        "the external base URL, used to check Twilio signatures and to build links; default: `http://<OTPGATE_HTTP>`",
    ),
    Setting(
        "OTPGATE_TWILIO_AUTH_TOKEN",
        None,
        "checks `X-Twilio-Signature`; without it (or shared keys) the SMS webhook answers 503",
        secret=True,
    ),
    Setting(
        "OTPGATE_TWILIO_SHARED_KEYS",
        None,
        "Twilio webhook SharedKeys as `KEY_ID=SECRET`, comma-separated: a text whose "
        "`X-Twilio-Webhooks-Signature-Settings` names one is checked with it "
        "(list the old and the new key while rotating)",
        secret=True,
    ),
    Setting(
        "OTPGATE_CODE_TTL",
        "300",
        "seconds an undelivered received code is kept before it is destroyed",
    ),
    Setting("OTPGATE_INTERACTION_TTL", "300", "seconds a user-driven code request stays open"),
    Setting(
        "OTPGATE_ALLOW_PRIVATE_TARGETS",
        "0",
        "`1` lets webhook and forwarding targets be loopback or private addresses",
    ),
    Setting(
        "OTPGATE_SMTP_RELAY",
        None,
        "`smtp://HOST:PORT` (or `smtps://USER:PASS@HOST:PORT`) "
        "through which email forwards are sent",
        secret=True,
    ),
    Setting(
        "OTPGATE_SMTP_HOSTNAME",
        None,
        "the name the SMTP listener greets with; default: the inbox domain",
    ),
    Setting(
        "OTPGATE_SMTP_TLS_CERT",
        None,
        "PEM certificate chain for SMTP STARTTLS (with `OTPGATE_SMTP_TLS_KEY`)",
    ),
    Setting("OTPGATE_SMTP_TLS_KEY", None, "PEM private key for SMTP STARTTLS"),
    Setting("OTPGATE_SMTP_MAX_SIZE", "1048576", "largest accepted mail in bytes (larger: 552)"),
    Setting("OTPGATE_SMTP_MAX_RECIPIENTS", "10", "recipients accepted per mail"),
    Setting("OTPGATE_SMTP_MAX_SESSIONS", "200", "concurrent SMTP sessions (more: 421)"),
    Setting("OTPGATE_SMTP_IDLE_TIMEOUT", "30", "seconds an SMTP session may stay silent"),
    Setting(
        "OTPGATE_SMTP_WORKER",
        "1",
        "`1` parses, extracts and stores mail and texts in a second process (another core); "
        "`0` in the gateway's own",
    ),
    Setting(
        "OTPGATE_TWILIO_ACCOUNT_SID",
        None,
        "when set, inbound texts must carry this `AccountSid`; with the auth token, "
        "lets the gateway buy numbers and send SMS forwards",
    ),
    Setting(
        "OTPGATE_TWILIO_API_URL",
        "https://api.twilio.com",
        "base URL of Twilio's REST API (change it only to test against a stand-in)",
    ),
    Setting(
        "OTPGATE_TWILIO_SMS_FROM",
        None,
        "number SMS forwards are sent from; default: the credential's own number",
    ),
    Setting(
        "OTPGATE_FORWARD_FROM",
        None,
        "From address of email forwards; default: `otpgate@<inbox domain>`",
    ),
    Setting(
        "OTPGATE_SMS_RATE_LIMIT",
        "60",
        "texts accepted per minute for one receiving number or device (more: 429)",
    ),
    Setting("OTPGATE_LOG_FORMAT", "text", "`text` for people, `json` for one JSON object per line"),
    Setting("OTPGATE_LOG_LEVEL", "info", "`debug`, `info`, `warning` or `error`"),
)

_KNOWN = {s.name for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The gateway's configuration; build it with :meth:`from_env`."""

    data_dir: Path = Path("./otpgate-data")
    database_url: str = ""
    http: Address = Address("127.0.0.1", 8080)
    smtp: Address = Address("127.0.0.1", 2525)
    inbox_domain: str = "inbox.localhost"
    master_key_file: Path = Path("./otpgate-data/master.key")
    admin_key: str | None = dataclasses.field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8080"
    twilio_auth_token: str | None = dataclasses.field(default=None, repr=False)
    #: Twilio SharedKey ids and their secrets.
    twilio_shared_keys: tuple[tuple[str, str], ...] = dataclasses.field(default=(), repr=False)
    code_ttl: int = 300
    interaction_ttl: int = 300
    allow_private_targets: bool = False
    smtp_relay: str | None = dataclasses.field(default=None, repr=False)
    smtp_hostname: str = "inbox.localhost"
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None
    smtp_max_size: int = 1024 * 1024
    smtp_max_recipients: int = 10
    smtp_max_sessions: int = 200
    smtp_idle_timeout: int = 30
    smtp_worker: bool = True
    twilio_account_sid: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    twilio_sms_from: str | None = None
    forward_from: str = "otpgate@inbox.localhost"
    sms_rate_limit: int = 60
    log_format: str = "text"
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every ``OTPGATE_*`` variable; raise ConfigError on the first bad one."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            if value is None or value.strip() == "":
                spec = next(s for s in SETTINGS if s.name == name)
                return spec.default
            return value.strip()

        data_dir = Path(get("OTPGATE_DATA_DIR") or "./otpgate-data")
        http = parse_address("OTPGATE_HTTP", get("OTPGATE_HTTP") or "")
        raw_db = get("OTPGATE_DATABASE_URL")
        database_url = (
            parse_database_url(raw_db)
            if raw_db
            else f"sqlite+aiosqlite:///{(data_dir / 'otpgate.db').resolve()}"
        )
        key_file = get("OTPGATE_MASTER_KEY_FILE")
        inbox_domain = _parse(get, "OTPGATE_INBOX_DOMAIN", _domain)
        tls_cert = _parse(get, "OTPGATE_SMTP_TLS_CERT", _readable_file, optional=True)
        tls_key = _parse(get, "OTPGATE_SMTP_TLS_KEY", _readable_file, optional=True)
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError("OTPGATE_SMTP_TLS_CERT and OTPGATE_SMTP_TLS_KEY go together")
        public_url = get("OTPGATE_PUBLIC_URL") or f"http://{http}"
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            http=http,
            smtp=parse_address("OTPGATE_SMTP", get("OTPGATE_SMTP") or ""),
            inbox_domain=inbox_domain,
            master_key_file=Path(key_file) if key_file else data_dir / "master.key",
            admin_key=_parse(get, "OTPGATE_ADMIN_KEY", _admin_key, optional=True),
            public_url=_public_url(public_url),
            twilio_auth_token=get("OTPGATE_TWILIO_AUTH_TOKEN"),
            twilio_shared_keys=_parse(
                get, "OTPGATE_TWILIO_SHARED_KEYS", _shared_keys, optional=True
            )
            or (),
            code_ttl=_parse(get, "OTPGATE_CODE_TTL", _seconds),
            interaction_ttl=_parse(get, "OTPGATE_INTERACTION_TTL", _seconds),
            allow_private_targets=_parse(get, "OTPGATE_ALLOW_PRIVATE_TARGETS", _flag),
            smtp_relay=_parse(get, "OTPGATE_SMTP_RELAY", _relay, optional=True),
            smtp_hostname=_parse(get, "OTPGATE_SMTP_HOSTNAME", _domain, optional=True)
            or inbox_domain,
            smtp_tls_cert=tls_cert,
            smtp_tls_key=tls_key,
            smtp_max_size=_parse(get, "OTPGATE_SMTP_MAX_SIZE", _bounded(1024, 64 * 1024 * 1024)),
            smtp_max_recipients=_parse(get, "OTPGATE_SMTP_MAX_RECIPIENTS", _bounded(1, 100)),
            smtp_max_sessions=_parse(get, "OTPGATE_SMTP_MAX_SESSIONS", _bounded(1, 10000)),
            smtp_idle_timeout=_parse(get, "OTPGATE_SMTP_IDLE_TIMEOUT", _bounded(1, 3600)),
            smtp_worker=_parse(get, "OTPGATE_SMTP_WORKER", _flag),
            twilio_account_sid=_parse(
                get, "OTPGATE_TWILIO_ACCOUNT_SID", _account_sid, optional=True
            ),
            twilio_api_url=_parse(get, "OTPGATE_TWILIO_API_URL", _http_url),
            twilio_sms_from=_parse(get, "OTPGATE_TWILIO_SMS_FROM", _e164, optional=True),
            forward_from=_parse(get, "OTPGATE_FORWARD_FROM", _mailbox, optional=True)
            or f"otpgate@{inbox_domain}",
            sms_rate_limit=_parse(get, "OTPGATE_SMS_RATE_LIMIT", _bounded(1, 100_000)),
            log_format=_parse(get, "OTPGATE_LOG_FORMAT", _choice("text", "json")),
            log_level=_parse(
                get, "OTPGATE_LOG_LEVEL", _choice("debug", "info", "warning", "error")
            ),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """``OTPGATE_*`` names in *env* that no setting declares (likely typos)."""
    return sorted(k for k in env if k.startswith("OTPGATE_") and k not in _KNOWN)


def _parse(
    get: Callable[[str], str | None],
    name: str,
    conv: Callable[[str], Any],
    *,
    optional: bool = False,
) -> Any:
    value = get(name)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name} must be set")
    try:
        return conv(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def parse_address(name: str, value: str) -> Address:
    """Parse ``HOST:PORT`` or ``[V6]:PORT``; raise ConfigError naming *name*."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{name}: {value!r} is not HOST:PORT (for example 127.0.0.1:8080)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{name}: {host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ConfigError(f"{name}: write an IPv6 address in brackets, as [::1]:8080")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{name}: port {port_text!r} is not a number from 1 to 65535")
    if not all(c.isalnum() or c in ".-:" for c in host):
        raise ConfigError(f"{name}: {host!r} is not a host name or IP address")
    return Address(host, int(port_text))


def parse_database_url(value: str) -> str:
    """Turn the contract's database URL into SQLAlchemy's async form."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise ConfigError(f"OTPGATE_DATABASE_URL: {_redact_url(value)!r} is not a URL")
    scheme = scheme.lower()
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        if not rest.startswith("/") or rest == "/":
            raise ConfigError("OTPGATE_DATABASE_URL: write a SQLite URL as sqlite:///PATH")
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        if not urlsplit(f"{scheme}://{rest}").hostname and "host=" not in rest:
            raise ConfigError("OTPGATE_DATABASE_URL: the PostgreSQL URL has no host")
        return f"postgresql+asyncpg://{rest}"
    raise ConfigError(
        f"OTPGATE_DATABASE_URL: unknown scheme {scheme!r}; use sqlite:///PATH "
        "or postgresql://USER@HOST:PORT/DB"
    )


def _redact_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.password:
        return value.replace(parts.password, "***")
    return value


def _domain(value: str) -> str:
    value = value.lower().rstrip(".")
    labels = value.split(".")
    if len(value) > 253 or not all(
        0 < len(lb) < 64 and lb.replace("-", "").isalnum() and lb.isascii() for lb in labels
    ):
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


def _public_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"OTPGATE_PUBLIC_URL: {value!r} is not an http(s) URL")
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


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


def _e164(value: str) -> str:
    if not (value.startswith("+") and value[1:].isdigit() and 8 <= len(value) <= 16):
        raise ValueError(f"{value!r} is not a number in E.164 form, such as +14155550100")
    return value


def _mailbox(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local or any(c.isspace() or c in "<>,;" for c in value):
        raise ValueError(f"{value!r} is not an email address")
    _domain(domain)
    return value
