"""Acme Cloud: a small sample site with two-factor logins, for the demo.

Server-rendered HTML forms (aiohttp, no JavaScript), four kinds of second
factor, each done the way real sites do it:

* ``totp``: a code from an authenticator app (RFC 6238, SHA-1, 6 digits),
  checked here with the standard library, independently of the gateway; a
  code is accepted once (a second login in the same step is refused);
* ``email``: the site mails a code by SMTP to the account's address (the
  credential's gateway inbox);
* ``sms``: the site texts a code: it posts to the gateway's Twilio webhook
  exactly as Twilio would, signed with Twilio's own ``RequestValidator``;
* ``person``: the site texts a code to the account owner's own phone,
  which the gateway cannot read; ``/phone`` shows that phone's messages.

A new login invalidates the account's earlier codes (only the newest is
valid), codes last ten minutes, five wrong tries end the login.  The site
logs no code; ``codes`` keeps them for the tests only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import secrets
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal
from urllib.parse import quote, urlencode

import aiohttp
import aiosmtplib
from aiohttp import web
from twilio.request_validator import RequestValidator

log = logging.getLogger("otpgate.demo.site")

Method = Literal["totp", "email", "sms", "person"]
CODE_TTL = 600
MAX_TRIES = 5
#: The short code the site texts from, and the Twilio account it pretends to be.
SMS_FROM = "+15005550006"
TWILIO_ACCOUNT = "AC" + "d3" * 16


@dataclass
class Account:
    username: str
    password: str
    display_name: str
    method: Method
    email: str | None = None
    phone: str | None = None
    totp_secret: str | None = None
    totp_period: int = 30
    #: The last TOTP step accepted: RFC 6238 section 5.2, a code is used once.
    last_step: int = -1
    #: Refuse the next N codes whatever they are (a test's knob: an "outdated" code).
    refuse_next: int = 0


@dataclass
class Login:
    """A login in progress (one per browser session)."""

    username: str
    code: str | None = None
    issued_at: float = 0.0
    tries: int = 0
    done: bool = False


@dataclass
class Outcome:
    username: str
    method: Method
    accepted: bool
    at: float = field(default_factory=time.time)


def totp(secret: str, step: int, digits: int = 6) -> str:
    """RFC 6238 / RFC 4226 with HMAC-SHA-1."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    mac = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{number % 10**digits:0{digits}d}"


def new_totp_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


class DemoSite:
    """The site's state and its aiohttp application."""

    def __init__(
        self,
        *,
        sms_webhook_url: str,
        smtp_host: str,
        smtp_port: int,
        twilio_token: str,
        name: str = "Acme Cloud",
    ) -> None:
        self.name = name
        #: The gateway's Twilio inbound-message webhook, where the site's texts go.
        self._sms_webhook_url = sms_webhook_url
        self._smtp = (smtp_host, smtp_port)
        self._twilio = RequestValidator(twilio_token)
        self.accounts: dict[str, Account] = {}
        self._logins: dict[str, Login] = {}
        #: Texts on the account owner's own phone (the ``person`` method), newest last.
        self.phone: list[tuple[str, str]] = []
        self.outcomes: list[Outcome] = []
        #: Every code the site issued or accepted: for tests that check logs for them.
        self.codes: set[str] = set()
        self._http: aiohttp.ClientSession | None = None

    def add(self, account: Account) -> Account:
        self.accounts[account.username] = account
        return account

    def totp_uri(self, username: str) -> str:
        """What the site's QR code would hold: ``otpauth://totp/...``."""
        account = self.accounts[username]
        assert account.totp_secret is not None
        label = quote(f"{self.name}:{username}")
        query = urlencode(
            {"secret": account.totp_secret, "issuer": self.name, "period": account.totp_period}
        )
        return f"otpauth://totp/{label}?{query}"

    def refused(self) -> int:
        return sum(1 for o in self.outcomes if not o.accepted)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._home)
        app.router.add_post("/login", self._login)
        app.router.add_get("/verify", self._verify_form)
        app.router.add_post("/verify", self._verify)
        app.router.add_post("/resend", self._resend)
        app.router.add_get("/account", self._account)
        app.router.add_get("/phone", self._phone)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        if self._http is not None:
            await self._http.close()

    # -- sending codes ----------------------------------------------------------------

    async def start_login(self, account: Account) -> Login:
        """Password accepted: make a login and send its code (the one valid code)."""
        login = Login(account.username)
        for sid, other in list(self._logins.items()):
            if other.username == account.username:
                del self._logins[sid]  # a new login invalidates the earlier codes
        await self._send_code(account, login)
        return login

    async def _send_code(self, account: Account, login: Login) -> None:
        if account.method == "totp":
            return
        code = f"{secrets.randbelow(10**6):06d}"
        login.code, login.issued_at, login.tries = code, time.time(), 0
        self.codes.add(code)
        if account.method == "email":
            await self._mail(account, code)
        elif account.method == "sms":
            await self._text(account, code)
        else:
            self.phone.append((account.username, code))
            log.info("texted a code to %s's own phone", account.username)

    async def _mail(self, account: Account, code: str) -> None:
        assert account.email is not None
        msg = EmailMessage()
        msg["From"] = f"{self.name} <no-reply@acme.example>"
        msg["To"] = account.email
        msg["Subject"] = f"Your {self.name} sign-in code"
        msg.set_content(
            f"Hi {account.display_name},\n\n"
            f"Your {self.name} verification code is {code}. It expires in 10 minutes.\n\n"
            "If you did not try to sign in, ignore this mail.\n"
        )
        host, port = self._smtp
        await aiosmtplib.send(msg, hostname=host, port=port, start_tls=False, timeout=10)
        log.info("mailed a code to %s", account.email)

    async def _text(self, account: Account, code: str) -> None:
        """Post the text to the gateway exactly as Twilio's inbound webhook would."""
        assert account.phone is not None
        sid = "SM" + secrets.token_hex(16)
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": TWILIO_ACCOUNT,
            "From": SMS_FROM,
            "To": account.phone,
            "Body": f"{self.name}: {code} is your sign-in code. Do not share it.",
            "NumMedia": "0",
            "NumSegments": "1",
            "ApiVersion": "2010-04-01",
        }
        url = self._sms_webhook_url
        signature = self._twilio.compute_signature(url, params)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.post(
            url,
            data=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"the gateway answered the text with {resp.status}")
        log.info("texted a code to %s", account.phone)

    # -- checking codes ----------------------------------------------------------------

    def check(self, account: Account, login: Login, typed: str) -> bool:
        typed = typed.strip()
        window: dict[int, str] = {}
        if account.method == "totp":
            assert account.totp_secret is not None
            now = int(time.time() // account.totp_period)
            # The current step and one of clock drift either way.
            window = {step: totp(account.totp_secret, step) for step in (now, now - 1, now + 1)}
            self.codes.update(window.values())
        if account.refuse_next > 0:
            account.refuse_next -= 1
            return False
        if account.method == "totp":
            for step, expected in window.items():
                if step > account.last_step and hmac.compare_digest(expected, typed):
                    account.last_step = step
                    return True
            return False
        login.tries += 1
        if login.code is None or login.tries > MAX_TRIES:
            return False
        if time.time() - login.issued_at > CODE_TTL:
            return False
        return hmac.compare_digest(login.code, typed)

    # -- pages ---------------------------------------------------------------------------

    def _session(self, request: web.Request) -> tuple[str, Login, Account] | None:
        sid = request.cookies.get("sid", "")
        login = self._logins.get(sid)
        if login is None:
            return None
        return sid, login, self.accounts[login.username]

    async def _home(self, request: web.Request) -> web.Response:
        return self._page("Sign in", _LOGIN_FORM)

    async def _login(self, request: web.Request) -> web.Response:
        form = await request.post()
        account = self.accounts.get(str(form.get("username", "")))
        password = str(form.get("password", ""))
        if account is None or not hmac.compare_digest(account.password, password):
            error = '<p class="error" id="login-error">Wrong username or password.</p>'
            return self._page("Sign in", error + _LOGIN_FORM, status=401)
        login = await self.start_login(account)
        sid = secrets.token_urlsafe(24)
        self._logins[sid] = login
        response = web.HTTPSeeOther("/verify")
        response.set_cookie("sid", sid, httponly=True, samesite="Lax")
        raise response

    async def _verify_form(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if found is None:
            raise web.HTTPSeeOther("/")
        return self._verify_page(found[2])

    async def _verify(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if found is None:
            raise web.HTTPSeeOther("/")
        _, login, account = found
        typed = str((await request.post()).get("code", ""))
        accepted = self.check(account, login, typed)
        self.outcomes.append(Outcome(account.username, account.method, accepted))
        log.info("%s's code was %s", account.username, "accepted" if accepted else "refused")
        if not accepted:
            return self._verify_page(account, error=True, status=401)
        login.done = True
        raise web.HTTPSeeOther("/account")

    async def _resend(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if found is None:
            raise web.HTTPSeeOther("/")
        _, login, account = found
        await self._send_code(account, login)
        return self._verify_page(account, note="We sent you a new code.")

    async def _account(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if found is None or not found[1].done:
            raise web.HTTPSeeOther("/")
        name = html.escape(found[2].display_name)
        return self._page("Your account", f'<h1 id="welcome">Welcome, {name}</h1>')

    async def _phone(self, request: web.Request) -> web.Response:
        """The account owner's own phone: the texts the ``person`` method sent."""
        items = "".join(
            f"<li><b>{html.escape(self.name)}</b> to {html.escape(user)}: "
            f"<span class=code>{code}</span> is your sign-in code.</li>"
            for user, code in reversed(self.phone)
        )
        latest = (
            f'<p>Newest: <span id="latest-code">{self.phone[-1][1]}</span></p>'
            if self.phone
            else ""
        )
        body = f"<h1>Messages on your phone</h1>{latest}<ul>{items or '<li>No messages.</li>'}</ul>"
        return self._page("Phone", body, headers={"Cache-Control": "no-store"})

    def _verify_page(
        self, account: Account, *, error: bool = False, note: str = "", status: int = 200
    ) -> web.Response:
        where = {
            "totp": "from your authenticator app",
            "email": f"we emailed to {html.escape(account.email or '')}",
            "sms": f"we texted to {html.escape(account.phone or '')}",
            "person": "we texted to your own phone",
        }[account.method]
        parts = [f'<p id="where">Enter the 6-digit code {where}.</p>']
        if note:
            parts.append(f'<p id="note">{html.escape(note)}</p>')
        if error:
            parts.append('<p class="error" id="code-error">That code is not right.</p>')
        parts.append(_VERIFY_FORM)
        if account.method in ("email", "sms"):
            parts.append(_RESEND_FORM)
        return self._page("Two-step verification", "".join(parts), status=status)

    def _page(
        self, title: str, body: str, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        doc = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)} · {html.escape(self.name)}</title>"
            "<meta name=viewport content='width=device-width, initial-scale=1'></head>"
            f"<body><header>{html.escape(self.name)}</header><main>{body}</main></body></html>"
        )
        return web.Response(
            text=doc, status=status, content_type="text/html", headers=headers or {}
        )


_LOGIN_FORM = """
<form method="post" action="/login">
  <label>Username <input id="username" name="username" autocomplete="username"></label>
  <label>Password <input id="password" name="password" type="password"
         autocomplete="current-password"></label>
  <button id="sign-in" type="submit">Sign in</button>
</form>
"""

_VERIFY_FORM = """
<form method="post" action="/verify">
  <label>Code <input id="code" name="code" inputmode="numeric"
         autocomplete="one-time-code"></label>
  <button id="verify" type="submit">Verify</button>
</form>
"""

_RESEND_FORM = """
<form method="post" action="/resend">
  <button id="resend" type="submit">Send a new code</button>
</form>
"""
