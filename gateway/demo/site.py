"""Acme Cloud: a small sample site with two-factor logins, for the demo.

Server-rendered HTML forms (aiohttp, no JavaScript), several kinds of
second factor, each done the way real sites do it:

* ``totp``: a code from an authenticator app (RFC 6238, SHA-1, 6 digits),
  checked here with the standard library, independently of the gateway; a
  code is accepted once (a second login in the same step is refused);
* ``email``: the site mails a code by SMTP to the account's address (the
  credential's gateway inbox);
* ``sms``: the site texts a code: it posts to the gateway's Twilio webhook
  exactly as Twilio would, signed with Twilio's own ``RequestValidator``;
* ``person``: the site texts a code to the account owner's own phone,
  which the gateway cannot read; ``/phone`` shows that phone's messages;
* ``link``: the site mails a sign-in link (by SMTP, to the credential's
  inbox) that signs in only the browser session that asked for it, once;
* ``push``: the sign-in screen shows a number, and the site's app on the
  owner's phone (``/phone``) asks which number the screen shows (number
  matching, as Microsoft, Okta and Duo do); "Continue" goes on once the
  right number was tapped there.

A new login invalidates the account's earlier codes and links (only the
newest is valid), codes and links last ten minutes, five wrong tries end the
login.  The site logs no code and no link; ``codes`` and ``links`` keep them
for the tests only.
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

Method = Literal["totp", "email", "sms", "person", "link", "push"]
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
class Push:
    """A push prompt on the owner's phone: the number the sign-in screen shows, and the choices."""

    id: str
    username: str
    number: str
    choices: list[str]
    #: None while unanswered; True when the right number was tapped.
    approved: bool | None = None


@dataclass
class Login:
    """A login in progress (one per browser session)."""

    username: str
    code: str | None = None
    #: The ``link`` method: the token of the link mailed for this session.
    link_token: str | None = None
    push: Push | None = None
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
        #: Every sign-in link's token the site mailed (the same use).
        self.links: set[str] = set()
        #: Push prompts sent to the owner's phone, newest last.
        self.pushes: list[Push] = []
        #: The site's own address, for the links it mails (set once it listens).
        self.url = ""
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
        app.router.add_get("/magic", self._magic)
        app.router.add_post("/continue", self._continue)
        app.router.add_get("/account", self._account)
        app.router.add_get("/phone", self._phone)
        app.router.add_post("/phone/push", self._answer_push)
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
        if account.method == "link":
            await self._mail_link(account, login)
            return
        if account.method == "push":
            self._push(account, login)
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

    async def _mail_link(self, account: Account, login: Login) -> None:
        """Mail a sign-in link that works once, in the browser session that asked for it."""
        assert account.email is not None
        token = secrets.token_urlsafe(24)
        login.link_token, login.issued_at = token, time.time()
        self.links.add(token)
        url = f"{self.url}/magic?token={token}"
        msg = EmailMessage()
        msg["From"] = f"{self.name} <no-reply@acme.example>"
        msg["To"] = account.email
        msg["Subject"] = f"Your {self.name} sign-in link"
        msg.set_content(
            f"Hi {account.display_name},\n\n"
            f"Click the link below to sign in to {self.name}. It works once, in the browser "
            f"where you asked for it, for 10 minutes.\n\n{url}\n\n"
            "If you did not try to sign in, ignore this mail.\n"
        )
        msg.add_alternative(
            f"<html><body><p>Hi {html.escape(account.display_name)},</p>"
            f"<p>Click the button below to sign in to {html.escape(self.name)}. It works once, "
            "in the browser where you asked for it, for 10 minutes.</p>"
            f'<p><a href="{html.escape(url)}" style="background:#2563eb;color:#fff;'
            f'padding:12px 20px;border-radius:6px">Sign in to {html.escape(self.name)}</a></p>'
            "<p>If you did not try to sign in, ignore this mail.</p></body></html>",
            subtype="html",
        )
        host, port = self._smtp
        await aiosmtplib.send(msg, hostname=host, port=port, start_tls=False, timeout=10)
        log.info("mailed a sign-in link to %s", account.email)

    def _push(self, account: Account, login: Login) -> None:
        """Send a push prompt to the owner's phone; the sign-in screen shows its number."""
        numbers: set[str] = set()
        while len(numbers) < 3:
            numbers.add(f"{10 + secrets.randbelow(90)}")
        choices = sorted(numbers)
        push = Push(secrets.token_urlsafe(8), account.username, secrets.choice(choices), choices)
        login.push, login.issued_at = push, time.time()
        self.pushes.append(push)
        log.info("sent a push prompt to %s's phone", account.username)

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
        return self._verify_page(found[2], found[1])

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
            return self._verify_page(account, login, error=True, status=401)
        login.done = True
        raise web.HTTPSeeOther("/account")

    async def _resend(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if found is None:
            raise web.HTTPSeeOther("/")
        _, login, account = found
        await self._send_code(account, login)
        return self._verify_page(account, login, note="We sent you a new code.")

    async def _magic(self, request: web.Request) -> web.Response:
        """A mailed link: signs in the session that asked for it, once, within ten minutes."""
        found = self._session(request)
        token = request.query.get("token", "")
        if found is not None:
            _, login, account = found
            expected = login.link_token
            if (
                expected is not None
                and hmac.compare_digest(expected, token)
                and time.time() - login.issued_at <= CODE_TTL
            ):
                login.link_token, login.done = None, True
                self.outcomes.append(Outcome(account.username, account.method, True))
                log.info("%s signed in by the mailed link", account.username)
                raise web.HTTPSeeOther("/account")
            self.outcomes.append(Outcome(account.username, account.method, False))
        log.info("a sign-in link was refused")
        error = (
            '<p class="error" id="link-error">This sign-in link is not valid in this browser, '
            "or it was used already.</p>"
        )
        return self._page("Sign in", error + _LOGIN_FORM, status=401)

    async def _continue(self, request: web.Request) -> web.Response:
        """After a push: go on when the phone approved it."""
        found = self._session(request)
        if found is None:
            raise web.HTTPSeeOther("/")
        _, login, account = found
        approved = login.push is not None and login.push.approved is True
        self.outcomes.append(Outcome(account.username, account.method, approved))
        if not approved:
            return self._verify_page(account, login, error=True, status=401)
        login.done = True
        raise web.HTTPSeeOther("/account")

    async def _answer_push(self, request: web.Request) -> web.Response:
        """The owner tapped a number (or Deny) in the site's app on their phone."""
        form = await request.post()
        push = next((p for p in self.pushes if p.id == form.get("push")), None)
        if push is not None and push.approved is None:
            tapped = str(form.get("number", ""))
            push.approved = hmac.compare_digest(push.number, tapped)
            log.info("%s's push was %s", push.username, "approved" if push.approved else "denied")
        raise web.HTTPSeeOther("/phone")

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
        body += "".join(self._push_prompt(p) for p in self.pushes if p.approved is None)
        return self._page("Phone", body, headers={"Cache-Control": "no-store"})

    def _push_prompt(self, push: Push) -> str:
        """The site's app on the phone: which number does the sign-in screen show?"""
        name, user = html.escape(self.name), html.escape(push.username)
        buttons = "".join(
            f'<button type="submit" name="number" value="{n}" class="push-number">{n}</button>'
            for n in push.choices
        )
        return (
            f'<section class="push" id="push-{html.escape(push.id)}"><h2>{name}: are you '
            f"signing in as {user}?</h2><p>Tap the number shown on the sign-in screen.</p>"
            f'<form method="post" action="/phone/push"><input type="hidden" name="push" '
            f'value="{html.escape(push.id)}">{buttons}'
            '<button type="submit" name="number" value="" class="push-deny">Deny</button>'
            "</form></section>"
        )

    def _verify_page(
        self,
        account: Account,
        login: Login,
        *,
        error: bool = False,
        note: str = "",
        status: int = 200,
    ) -> web.Response:
        if account.method == "link":
            address = html.escape(account.email or "")
            return self._page(
                "Check your mail",
                f'<p id="where">We emailed a sign-in link to {address}. Open it in this '
                "browser to sign in.</p>",
                status=status,
            )
        if account.method == "push":
            number = html.escape(login.push.number if login.push else "")
            parts = [
                '<p id="where">Open the Acme Cloud app on your phone and tap the number '
                f'<strong class="match" id="match">{number}</strong>, then press Continue.</p>'
            ]
            if error:
                parts.append(
                    '<p class="error" id="push-error">The sign-in was not approved on '
                    "your phone.</p>"
                )
            parts.append(_CONTINUE_FORM)
            return self._page("Approve the sign-in", "".join(parts), status=status)
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

_CONTINUE_FORM = """
<form method="post" action="/continue">
  <button id="continue" type="submit">Continue</button>
</form>
"""

_RESEND_FORM = """
<form method="post" action="/resend">
  <button id="resend" type="submit">Send a new code</button>
</form>
"""
