"""The SDK's logins, links, backup codes and approvals against a real gateway on loopback.

The gateway runs on SQLite with its background workers and its SMTP
listener; codes and links arrive as real mail over SMTP to the credential's
inbox, a person's decision is posted to the real ``submit_url``, and the
browser helpers drive Debian's Chromium through Playwright against a small
site on loopback that mails its sign-in links and checks TOTP codes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import pyotp
import pytest
from aiohttp import web

from gateway.client import (
    AsyncClient,
    BackupCode,
    Client,
    CodeTimeout,
    Conflict,
    ConnectionFailed,
    Expired,
    LinkTimeout,
    Login,
    LoginInProgress,
    NoBackupCodes,
    Retry,
    Secret,
    aio,
    fill_code,
    open_link,
    transport,
)
from gateway.demo.agent import CHROMIUM, CHROMIUM_ARGS

from .helpers import (
    ADMIN_KEY,
    Served,
    eventually,
    link_mail,
    listening,
    need_browser,
    otp_mail,
    parked,
    port_of,
    reserved,
    send_mail,
    served_on_loopback,
)

FAST = Retry(attempts=4, backoff=0.02, max_backoff=0.1)
TOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A real gateway on loopback (HTTP and SMTP), with its background workers running."""
    async with served_on_loopback(
        tmp_path, background=True, smtp=True, OTPGATE_INTERACTION_TTL="4"
    ) as s:
        yield s


async def _tenant_key(served: Served) -> Secret:
    async with AsyncClient(served.url, ADMIN_KEY) as admin:
        return (await admin.create_tenant("acme")).api_key


@pytest.fixture
async def gate(served: Served) -> AsyncIterator[AsyncClient]:
    """An AsyncClient with a new tenant's key."""
    async with AsyncClient(served.url, await _tenant_key(served), retry=FAST) as client:
        yield client


async def mail_code(served: Served, inbox: str, code: str) -> None:
    """A sign-in code mailed to *inbox* over SMTP; back once the gateway stored it (250)."""
    assert served.smtp_port is not None
    await asyncio.to_thread(send_mail, served.smtp_port, inbox, otp_mail(code))


async def status_of(gate: AsyncClient, login: Login) -> str:
    """The login's status as the gateway has it (a fresh object, not *login*'s memory)."""
    answer = await gate._http.request(
        "GET", "/v1/logins/{id}", path={"id": login.id}, repeatable=True
    )
    return str(answer.body["status"])


# -- the login block ---------------------------------------------------------------------


async def test_a_login_takes_only_later_codes_and_a_clean_exit_succeeds(
    served: Served, gate: AsyncClient
) -> None:
    """A code mailed before the login is never handed to it; leaving cleanly finishes it."""
    cred = await gate.create_credential("bank")
    await mail_code(served, cred.inbox, "111111")  # from an earlier sign-in
    async with gate.login(cred, ttl=60) as login:
        assert (login.status, login.credential_id) == ("open", cred.id)
        with pytest.raises(CodeTimeout):
            await login.code(wait=0.3)
        await mail_code(served, cred.inbox, "222222")
        code = await login.code(wait=10)
        assert (code.value, code.source) == ("222222", "email")
    assert login.status == "succeeded" and login.finished
    assert await status_of(gate, login) == "succeeded"
    assert "222222" not in repr(login) and "222222" not in repr(code)
    async with gate.login(cred) as again:  # the account is free once more
        assert again.id != login.id


async def test_an_exception_finishes_the_login_as_failed_and_is_raised(
    served: Served, gate: AsyncClient
) -> None:
    """An exception in the block finishes the login as failed; one finished inside stays so."""
    cred = await gate.create_credential("bank")
    with pytest.raises(RuntimeError, match="the site is down"):
        async with gate.login(cred) as login:
            raise RuntimeError("the site is down")
    assert await status_of(gate, login) == "failed"
    async with gate.login(cred) as given_up:
        await given_up.finish("failed")
    assert await status_of(gate, given_up) == "failed"  # not turned into succeeded
    with pytest.raises(Conflict) as twice:
        await given_up.finish("succeeded")
    assert twice.value.code == "login_finished"


async def test_the_blocking_client_finishes_its_logins_the_same_way(served: Served) -> None:
    """``with client.login(cred) as login:`` takes a code; clean exit succeeded, error failed."""
    key = await _tenant_key(served)
    loop = asyncio.get_running_loop()

    def scenario() -> tuple[str, str, str, str]:
        with Client(served.url, key, retry=FAST) as gate:
            cred = gate.create_credential("bank")
            with gate.login(cred, ttl=60) as login:
                asyncio.run_coroutine_threadsafe(
                    mail_code(served, cred.inbox, "737373"), loop
                ).result(10)
                value = login.code(wait=10).value
            with pytest.raises(KeyError), gate.login(cred) as broken:
                raise KeyError("no such field on the page")
            return value, login.status, broken.refresh().status, repr(login)

    value, status, broken, shown = await asyncio.to_thread(scenario)
    assert (value, status, broken) == ("737373", "succeeded", "failed")
    assert "737373" not in shown


async def test_a_second_login_is_refused_or_queues_and_gets_only_its_own_code(
    served: Served, gate: AsyncClient
) -> None:
    """While one login is open another gets LoginInProgress, or with wait opens after it ends."""
    cred = await gate.create_credential("bank")
    first = await gate.open_login(cred)
    with pytest.raises(LoginInProgress) as busy:
        async with gate.login(cred):
            pytest.fail("a second login opened while the first was open")
    assert isinstance(busy.value, Conflict) and busy.value.code == "login_in_progress"

    async def second_agent() -> tuple[Login, str]:
        async with gate.login(cred, wait=30) as login:
            return login, (await login.code(wait=20)).value

    queued = asyncio.create_task(second_agent())
    await parked(served.gateway, f"login:{cred.id}")
    await mail_code(served, cred.inbox, "333333")
    assert (await first.code(wait=10)).value == "333333"
    assert not queued.done()
    await first.finish("succeeded")
    await parked(served.gateway, cred.id)  # the second login is open and waits for its code
    await mail_code(served, cred.inbox, "444444")
    second, value = await asyncio.wait_for(queued, 20)
    assert value == "444444"
    assert second.status == "succeeded" and await status_of(gate, first) == "succeeded"
    assert second.started_at is not None and first.finished_at is not None
    assert second.started_at >= first.finished_at


async def test_reject_in_a_login_makes_the_next_code_a_newer_one(
    served: Served, gate: AsyncClient
) -> None:
    """After reject the next code is one received after the refused one; a reject needs one."""
    cred = await gate.create_credential("bank")
    async with gate.login(cred) as login:
        with pytest.raises(Conflict) as nothing:
            await login.reject()
        assert nothing.value.code == "nothing_handed_out"
        await mail_code(served, cred.inbox, "515151")
        assert (await login.code(wait=10)).value == "515151"
        # The site mails a fresh code as it refuses the first; it arrives before reject().
        await mail_code(served, cred.inbox, "626262")
        await login.reject()
        assert (await login.code(wait=10)).value == "626262"
        await login.reject()
        with pytest.raises(CodeTimeout):
            await login.code(wait=0.3)
        assert login.handed_out == 2


async def test_a_refused_totp_code_in_a_login_is_followed_by_the_next_step(
    gate: AsyncClient,
) -> None:
    """A login's TOTP code, once rejected, is followed by one of a later time step."""
    cred = await gate.create_credential("bank")
    await gate.set_authenticator(cred, secret=TOTP_SECRET, kind="totp", period=3)
    reference = pyotp.TOTP(TOTP_SECRET, interval=3)
    async with gate.login(cred) as login:
        first = await login.code(wait=5)
        assert first.source == "totp" and first.expires_at is not None
        await login.reject()
        second = await login.code(wait=10)
    assert second.expires_at is not None and second.expires_at > first.expires_at
    assert second.value == reference.at(second.expires_at.timestamp() - 1)


async def test_a_login_passes_over_a_totp_code_about_to_expire(gate: AsyncClient) -> None:
    """``login.code(min_validity=2)`` near the end of a step gives the next step's code."""
    cred = await gate.create_credential("bank")
    await gate.set_authenticator(cred, secret=TOTP_SECRET, kind="totp", period=3)
    reference = pyotp.TOTP(TOTP_SECRET, interval=3)
    async with gate.login(cred) as login:
        await sampled_clock(gate, 0.5)
        await asyncio.sleep((2.3 - time.time() % 3) % 3)  # the behaviour: a step's last 0.7 s
        asked_in = int(time.time() // 3)
        code = await login.code(wait=10, min_validity=2)
    assert code.expires_at is not None
    assert int(code.expires_at.timestamp() // 3) == asked_in + 2  # the next step ends then
    assert code.value == reference.at((asked_in + 1) * 3)


async def test_a_finished_login_reads_raise_expired(served: Served, gate: AsyncClient) -> None:
    """A login that ran out of time is finished as failed: its reads raise Expired."""
    cred = await gate.create_credential("bank")
    async with gate.login(cred, ttl=1) as login:
        with pytest.raises(Expired) as over:
            await login.code(wait=5)  # the gateway waits no longer than the login lasts
        assert over.value.code == "login_finished"
    assert login.status == "failed"  # the clean exit could not make it succeeded


async def test_long_waits_are_split_into_requests_the_gateway_takes(
    served: Served,
    gate: AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wait longer than one request may hold is asked again, for codes and for queueing."""
    caplog.set_level(logging.DEBUG, logger="otpgate.client")
    monkeypatch.setattr(transport, "MAX_WAIT", 0.4)  # the gateway's 300 s, made short
    monkeypatch.setattr(aio, "MAX_WAIT", 0.4)
    cred = await gate.create_credential("bank")

    def asked(line: str) -> int:
        return sum(r.getMessage().startswith(line) for r in caplog.records)

    async with gate.login(cred) as first:
        started = time.monotonic()
        with pytest.raises(CodeTimeout):
            await first.code(wait=1.0)
        assert time.monotonic() - started >= 1.0
        assert asked("GET /v1/logins/{id}/code -> 204") >= 3
        with pytest.raises(LoginInProgress):
            await gate.open_login(cred, wait=1.0)
        assert asked("POST /v1/credentials/{id}/logins -> 409") >= 3
        queued = asyncio.create_task(gate.open_login(cred, wait=20))
        await eventually(lambda: _more(asked, "POST /v1/credentials/{id}/logins -> 409", 5))
    second = await asyncio.wait_for(queued, 10)
    assert second.status == "open"
    await second.finish("succeeded")


async def _more(asked: Any, line: str, count: int) -> bool:
    return bool(asked(line) >= count)


# -- what is repeated after a lost answer ------------------------------------------------


class LosingProxy:
    """An HTTP front for the gateway that forwards each request and can lose its answer.

    ``lose["POST finish"] = 1`` makes the next ``POST .../finish`` reach the
    gateway and its answer vanish: the client's connection is cut instead.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.lose: dict[str, int] = {}
        self.seen: list[str] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> LosingProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = listening()
        self.url = f"http://127.0.0.1:{port_of(sock)}"
        await web.SockSite(self._runner, sock).start()
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        key = f"{request.method} {request.path.rsplit('/', 1)[1]}"
        self.seen.append(key)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type", "accept")
        }
        async with self._session.request(
            request.method,
            self.target + request.path_qs,
            data=await request.read() or None,
            headers=headers,
        ) as up:
            raw, status, kind = await up.read(), up.status, up.content_type
        if self.lose.get(key, 0) > 0:
            self.lose[key] -= 1
            assert request.transport is not None
            request.transport.abort()  # the gateway acted; the client never hears of it
            return web.Response(status=status)
        return web.Response(body=raw, status=status, content_type=kind if raw else None)


async def test_opening_a_login_is_not_repeated_but_reject_finish_and_decide_are(
    served: Served,
) -> None:
    """A lost answer: opening raises (a repeat would meet its own login), the others settle."""
    key = await _tenant_key(served)
    proxy = await LosingProxy(served.url).start()
    try:
        async with (
            AsyncClient(proxy.url, key, retry=FAST) as gate,
            AsyncClient(served.url, key) as direct,
        ):
            cred = await direct.create_credential("bank")
            proxy.lose["POST logins"] = 1
            with pytest.raises(ConnectionFailed) as lost:
                await gate.open_login(cred, ttl=2)
            assert lost.value.maybe_processed is True
            assert proxy.seen.count("POST logins") == 1
            with pytest.raises(LoginInProgress):  # the orphan holds the account...
                await direct.open_login(cred)
            login = await gate.open_login(cred, wait=10)  # ...until its ttl runs out
            assert login.status == "open"
            await mail_code(served, cred.inbox, "808080")
            assert (await login.code(wait=10)).value == "808080"
            await mail_code(served, cred.inbox, "909090")
            proxy.lose["POST reject"] = 1
            await login.reject()  # repeated; the repeat found the reject recorded
            assert proxy.seen.count("POST reject") == 2
            assert (await login.code(wait=10)).value == "909090"
            proxy.lose["POST finish"] = 1
            await login.finish("succeeded")
            assert proxy.seen.count("POST finish") == 2
            assert login.status == "succeeded" == await status_of(direct, login)

            asked = await direct.create_interaction(cred, kind="approval", match="12")
            proxy.lose["POST decision"] = 1
            await gate.decide(asked, "approved")
            assert proxy.seen.count("POST decision") == 2
            assert (await direct.interaction(asked)).status == "approved"
            with pytest.raises(Conflict):  # another decision is still refused
                await gate.decide(asked, "denied")
    finally:
        await proxy.stop()


# -- backup codes ---------------------------------------------------------------------------


async def test_backup_codes_are_handed_out_once_and_never_shown(
    served: Served, gate: AsyncClient
) -> None:
    """Each stored backup code is taken once, with the count left; then NoBackupCodes."""
    cred = await gate.create_credential("bank")
    codes = ["4f7a-9c21", "b3d8-1e65", "77c0-a4f2"]
    assert await gate.set_backup_codes(cred, codes) == 3
    assert await gate.backup_codes_left(cred) == 3
    taken: list[BackupCode] = [await gate.take_backup_code(cred) for _ in codes]
    assert sorted(t.value for t in taken) == sorted(codes)
    assert [t.remaining for t in taken] == [2, 1, 0]
    with pytest.raises(NoBackupCodes) as none_left:
        await gate.take_backup_code(cred)
    assert isinstance(none_left.value, Conflict) and none_left.value.code == "no_backup_codes"
    assert await gate.backup_codes_left(cred) == 0
    shown = " ".join(repr(t) + str(t) for t in taken)
    assert "remaining=0" in shown and not any(c in shown for c in codes)
    key = await _tenant_key(served)

    def blocking() -> tuple[int, str, int]:
        with Client(served.url, key) as sync:
            other = sync.create_credential("shop")
            stored = sync.set_backup_codes(other, ["one-1111"])
            got = sync.take_backup_code(other)
            return stored, got.value, sync.backup_codes_left(other)

    assert await asyncio.to_thread(blocking) == (1, "one-1111", 0)


# -- approvals --------------------------------------------------------------------------------


async def test_request_approval_returns_the_persons_decision(
    served: Served, gate: AsyncClient
) -> None:
    """The person sees the number at submit_url and approves (a form) or denies (JSON)."""
    cred = await gate.create_credential("Okta")
    pages: list[str] = []

    async def person(url: str, decision: str) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as page:
                pages.append(await page.text())
            if decision == "approved":
                async with session.post(url, data={"decision": "approved"}) as resp:
                    assert resp.status == 200 and "approved" in await resp.text()
            else:
                async with session.post(url, json={"decision": "denied"}) as resp:
                    assert resp.status == 204

    handed: list[str] = []

    async def approve_later(url: str) -> None:
        handed.append(url)
        asyncio.get_running_loop().call_later(
            0.2, lambda: asyncio.ensure_future(person(url, "approved"))
        )

    approved = await gate.request_approval(
        cred, match="47", prompt="Sign in to Okta?", wait=10, on_submit_url=approve_later
    )
    assert (approved.status, approved.kind, approved.approved) == ("approved", "approval", True)
    assert re.search(r'id="match"[^>]*>47<', pages[0])
    assert handed[0].startswith(served.url + "/submit/")

    async def deny(url: str) -> None:
        await person(url, "denied")

    denied = await gate.request_approval(cred, match="12", wait=10, on_submit_url=deny)
    assert (denied.status, denied.approved) == ("denied", False)

    started = time.monotonic()
    ignored = await gate.request_approval(cred, wait=20, on_submit_url=lambda url: None)
    assert ignored.status == "expired"  # OTPGATE_INTERACTION_TTL=4: over at once, not at 20 s
    assert time.monotonic() - started < 15

    asked = await gate.create_interaction(cred, kind="approval", match="90")
    assert (asked.kind, asked.status) == ("approval", "pending")
    assert "90" not in repr(asked).replace(asked.id, "")
    waiting = asyncio.create_task(gate.interaction(asked, wait=10))
    await parked(served.gateway, asked.id)
    await gate.decide(asked, "approved")
    assert (await asyncio.wait_for(waiting, 10)).status == "approved"
    short = await gate.interaction(asked, wait=0)
    assert short.status == "approved"


async def test_the_blocking_client_requests_an_approval(served: Served) -> None:
    """``Client.request_approval`` waits in the caller's thread for the decision."""
    key = await _tenant_key(served)
    loop = asyncio.get_running_loop()

    async def deny(url: str) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"decision": "denied"}) as resp,
        ):
            assert resp.status == 204

    def scenario() -> str:
        with Client(served.url, key) as gate:
            cred = gate.create_credential("Duo")
            return gate.request_approval(
                cred,
                match="31",
                wait=10,
                on_submit_url=lambda url: asyncio.run_coroutine_threadsafe(deny(url), loop),
            ).status

    assert await asyncio.to_thread(scenario) == "denied"


# -- links --------------------------------------------------------------------------------


class LinkSite:
    """A site on loopback that signs in by a mailed link, or by a TOTP code.

    A link works once, and only in the browser session that asked for it
    (its cookie), as many sites do.  ``refuse_next`` refuses the next TOTP
    codes whatever they are.  ``urls`` keeps every link mailed, for leak checks.
    """

    def __init__(self, smtp_port: int, inbox: str, period: int = 3) -> None:
        self.smtp_port = smtp_port
        self.inbox = inbox
        self.totp = pyotp.TOTP(TOTP_SECRET, interval=period)
        self.period = period
        self.tokens: dict[str, str] = {}  # token -> the session that asked for it
        self.used: set[str] = set()
        self.urls: list[str] = []
        self.typed: list[str] = []
        self.refuse_next = 0
        self.last_step = -1
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> LinkSite:
        app = web.Application()
        app.router.add_get("/", self._home)
        app.router.add_post("/send-link", self._send_link)
        app.router.add_get("/magic", self._magic)
        app.router.add_get("/totp", self._totp_form)
        app.router.add_post("/totp", self._totp_check)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = listening()
        self.url = f"http://127.0.0.1:{port_of(sock)}"
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def mail_link(self, session: str) -> None:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = session
        url = f"{self.url}/magic?token={token}"
        self.urls.append(url)
        await aiosmtplib.send(
            link_mail(url, self.inbox), hostname="127.0.0.1", port=self.smtp_port, timeout=10
        )

    @staticmethod
    def _page(body: str, status: int = 200) -> web.Response:
        doc = f"<!doctype html><html><head><title>Acme</title></head><body>{body}</body></html>"
        return web.Response(text=doc, status=status, content_type="text/html")

    async def _home(self, request: web.Request) -> web.Response:
        resp = self._page(
            '<form method="post" action="/send-link">'
            '<button id="send-link" type="submit">Email me a sign-in link</button></form>'
        )
        if "sid" not in request.cookies:
            resp.set_cookie("sid", secrets.token_urlsafe(16), httponly=True, samesite="Lax")
        return resp

    async def _send_link(self, request: web.Request) -> web.Response:
        await self.mail_link(request.cookies.get("sid", ""))
        return self._page('<p id="sent">Check your mail for a sign-in link.</p>')

    async def _magic(self, request: web.Request) -> web.Response:
        token = request.query.get("token", "")
        session = request.cookies.get("sid")
        if token in self.used or session is None or self.tokens.get(token) != session:
            return self._page('<p id="link-error">This link is not valid here.</p>', 401)
        self.used.add(token)
        return self._page('<h1 id="welcome">Welcome back</h1>')

    async def _totp_form(self, request: web.Request) -> web.Response:
        return self._page(
            '<form method="post" action="/totp"><input id="code" name="code">'
            '<button id="verify" type="submit">Verify</button></form>'
        )

    async def _totp_check(self, request: web.Request) -> web.Response:
        typed = str((await request.post()).get("code", ""))
        self.typed.append(typed)
        step = int(time.time() // self.period)
        if self.refuse_next > 0:
            self.refuse_next -= 1
        else:
            for candidate in (step, step - 1):
                if candidate > self.last_step and typed == self.totp.at(candidate * self.period):
                    self.last_step = candidate
                    return self._page('<h1 id="welcome">Welcome back</h1>')
        body = '<p class="error" id="code-error">That code is not right.</p>'
        return web.Response(
            text=(await self._totp_form(request)).text.replace("<form", body + "<form"),
            status=401,
            content_type="text/html",
        )


async def sampled_clock(gate: AsyncClient, seconds: float) -> None:
    """Ask the gateway often for a while, so its clock is known to a few milliseconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await gate.health()
        await asyncio.sleep(0.02)  # the behaviour: samples spread over time


@pytest.fixture
async def site(served: Served, gate: AsyncClient) -> AsyncIterator[tuple[LinkSite, str]]:
    """The link site, mailing to a new credential's inbox; and that credential's id."""
    cred = await gate.create_credential("Acme")
    assert served.smtp_port is not None
    running = await LinkSite(served.smtp_port, cred.inbox).start()
    try:
        yield running, cred.id
    finally:
        await running.stop()


async def test_links_are_handed_out_once_and_only_after_the_mark(
    served: Served, gate: AsyncClient, site: tuple[LinkSite, str]
) -> None:
    """expect_link skips a link mailed before it; a login's reject makes the next link newer."""
    acme, cred = site
    await acme.mail_link("an earlier sign-in")
    await sampled_clock(gate, 1.1)
    async with gate.expect_link(cred, margin=0) as pending:
        with pytest.raises(LinkTimeout):
            await pending.link(wait=0.3)
        await acme.mail_link("this one")
    link = await pending
    assert (link.url, link.kind, link.source) == (acme.urls[1], "sign_in", "email")
    assert link.url not in repr(link) + str(link) + repr(pending)
    assert await gate.link(cred) is None  # once; the earlier one went with it
    async with gate.login(cred) as login:
        with pytest.raises(LinkTimeout):
            await login.link(wait=0.3)
        await acme.mail_link("the login's")
        assert (await login.link(wait=10)).url == acme.urls[2]
        await acme.mail_link("sent as the first was refused")
        await login.reject()
        assert (await login.link(wait=10)).url == acme.urls[3]
    key = await _tenant_key(served)
    loop = asyncio.get_running_loop()

    def blocking() -> bool:
        with Client(served.url, key) as sync:
            other = sync.create_credential("Acme, blocking")
            mailing = LinkSite(acme.smtp_port, other.inbox)
            mailing.url = acme.url
            with sync.expect_link(other) as waiting:
                asyncio.run_coroutine_threadsafe(mailing.mail_link("x"), loop).result(10)
            return waiting.link(wait=10).url == mailing.urls[0]

    assert await asyncio.to_thread(blocking)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, through Playwright."""
    need_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def test_open_link_signs_the_agents_own_page_in_and_never_shows_the_link(
    served: Served,
    gate: AsyncClient,
    site: tuple[LinkSite, str],
    browser: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The link opens in the page that asked for it; a refusal is reported; no URL escapes."""
    caplog.set_level(logging.DEBUG)
    acme, cred = site
    page = await (await browser.new_context()).new_page()
    await page.goto(acme.url)
    async with gate.login(cred) as login:
        signed_in = await open_link(
            page,
            gate,
            login,
            trigger=lambda: page.click("#send-link"),
            accepted="#welcome",
            rejected="#link-error",
        )
    assert (signed_in.ok, signed_in.outcome, signed_in.kind) == (True, "accepted", "sign_in")
    assert signed_in.status == 200 and login.status == "succeeded"
    assert acme.used == {acme.urls[0].rsplit("=", 1)[1]}

    # A link asked for by another browser session: this page's cookie does not match it.
    stranger = await (await browser.new_context()).new_page()
    await stranger.goto(acme.url)
    async with gate.login(cred) as login:
        await acme.mail_link("someone else's session")
        refused = await open_link(
            stranger, gate, login, accepted="#welcome", rejected="#link-error", wait=10
        )
        assert (refused.ok, refused.outcome, refused.status) == (False, "rejected", 401)
        with pytest.raises(Conflict) as reported:
            await login.reject()  # open_link reported the refusal already
        assert reported.value.code == "nothing_handed_out"
        await login.finish("failed")

    # Without a login: expect_link around the trigger, so an earlier link is never opened.
    await page.goto(acme.url)
    await page.click("#send-link")  # an earlier sign-in's link, valid for this very page
    await sampled_clock(gate, 2.0)
    await page.goto(acme.url)
    fresh = await open_link(
        page, gate, cred, trigger=lambda: page.click("#send-link"), accepted="#welcome"
    )
    assert (fresh.ok, fresh.outcome) == (True, "accepted")
    assert acme.urls[3].rsplit("=", 1)[1] in acme.used
    assert acme.urls[2].rsplit("=", 1)[1] not in acme.used

    none = await open_link(page, gate, cred, wait=0.3, accepted="#welcome")
    assert (none.ok, none.outcome, none.kind) == (False, "no_link", None)
    with reserved() as closed:  # a link to a site that is down: the browser's error names it
        dead = f"http://127.0.0.1:{port_of(closed)}/magic?token={secrets.token_urlsafe(24)}"
        await aiosmtplib.send(
            link_mail(dead, acme.inbox), hostname="127.0.0.1", port=acme.smtp_port, timeout=10
        )
        down = await open_link(page, gate, cred, wait=10)
    assert (down.ok, down.outcome, down.status) == (False, "unreachable", None)

    # The SDK's log (the gateway's SMTP library logs mail lines at DEBUG; serve quiets it).
    sdk_log = "\n".join(r.getMessage() for r in caplog.records if r.name == "otpgate.client")
    shown = "\n".join(repr(r) for r in (signed_in, refused, fresh, none, down)) + sdk_log
    for url in [*acme.urls, dead]:
        assert url.rsplit("=", 1)[1] not in shown
    assert "GET /v1/logins/{id}/link -> 200" in sdk_log  # the log is there


async def test_fill_code_in_a_login_reports_a_refusal_and_types_the_next_step(
    served: Served, gate: AsyncClient, site: tuple[LinkSite, str], browser: Any
) -> None:
    """A refused TOTP code is rejected in the login, and a code of a later step is typed."""
    acme, cred = site
    await gate.set_authenticator(cred, secret=TOTP_SECRET, kind="totp", period=acme.period)
    acme.refuse_next = 1  # as if the first code were outdated
    page = await (await browser.new_context()).new_page()
    await page.goto(acme.url + "/totp")
    async with gate.login(cred) as login:
        result = await fill_code(
            page,
            "#code",
            gate,
            cred,
            login=login,
            submit="#verify",
            accepted="#welcome",
            rejected="#code-error",
            attempts=2,
            wait=10,
        )
    assert (result.ok, result.outcome, result.source, result.attempts) == (
        True,
        "accepted",
        "totp",
        2,
    )
    assert login.status == "succeeded"
    first, second = acme.typed
    assert first != second  # a code of a later step, not the refused one again
    assert second == acme.totp.at(acme.last_step * acme.period)


# -- fill_code on split code fields -------------------------------------------------------------

#: The ways sites lay out a code's field: one input, or one box per character.
OTP_LAYOUTS = {
    "one field": '<input id="code" class="otp" autocomplete="one-time-code">',
    "plain boxes": '<input class="otp" maxlength="1">' * 6,
    "auto-advancing boxes": '<input class="otp" maxlength="1" inputmode="numeric">' * 6,
    "boxes with a paste handler": '<input class="otp" maxlength="1">' * 6,
    "boxes that refuse input": '<input class="otp" maxlength="1">' * 6,
}
#: What each layout's script does (besides checking the code on submit).
OTP_SCRIPTS = {
    "one field": "",
    "plain boxes": "",
    "auto-advancing boxes": """
        boxes.forEach((b, i) => {
            b.addEventListener("focus", () => b.select());
            b.addEventListener("input", () => {
                b.value = b.value.slice(-1);
                if (b.value && boxes[i + 1]) boxes[i + 1].focus();
            });
        });""",
    "boxes with a paste handler": """
        boxes[0].addEventListener("paste", e => {
            e.preventDefault();
            const text = e.clipboardData.getData("text").trim();
            boxes.forEach((b, i) => { b.value = text[i] || ""; });
            window.pasted = true;
        });""",
    "boxes that refuse input": """
        boxes.forEach(b => b.addEventListener("input", () => { b.value = ""; }));""",
}


def otp_page(layout: str, expected: str) -> str:
    """A code form laid out as *layout*; it says #welcome for *expected*, else #code-error."""
    return f"""<!doctype html><html><head><title>Acme</title></head><body>
        <form id="form">{OTP_LAYOUTS[layout]}<button id="verify">Verify</button></form>
        <p id="welcome" hidden>Welcome back</p><p id="code-error" hidden>Wrong code</p>
        <script>
        const boxes = [...document.querySelectorAll(".otp")];
        {OTP_SCRIPTS[layout]}
        document.getElementById("form").addEventListener("submit", e => {{
            e.preventDefault();
            window.typed = boxes.map(b => b.value).join("");
            const verdict = window.typed === "{expected}" ? "welcome" : "code-error";
            document.getElementById(verdict).hidden = false;
        }});
        </script></body></html>"""


async def otp_tab(browser: Any, html: str) -> Any:
    """A new page showing *html* (each in its own window: the pages' scripts share names)."""
    page = await (await browser.new_context()).new_page()
    await page.set_content(html)
    return page


async def test_fill_code_types_into_a_field_and_into_each_kind_of_box_set(
    served: Served, gate: AsyncClient, browser: Any
) -> None:
    """One field, plain boxes, auto-advancing boxes and a paste handler all get the whole code."""
    cred = await gate.create_credential("Acme")
    for n, layout in enumerate(list(OTP_LAYOUTS)[:4]):
        code = f"{n + 1}8{n + 2}9{n + 3}7"
        page = await otp_tab(browser, otp_page(layout, code))
        await mail_code(served, cred.inbox, code)
        result = await fill_code(
            page,
            ".otp",
            gate,
            cred,
            submit="#verify",
            accepted="#welcome",
            rejected="#code-error",
            wait=10,
        )
        assert (result.ok, result.outcome, result.source) == (True, "accepted", "email"), layout
        assert await page.evaluate("window.typed") == code, layout
    assert await page.evaluate("window.pasted") is True


async def test_fill_code_checks_the_boxes_before_taking_a_code(
    served: Served, gate: AsyncClient, browser: Any
) -> None:
    """No field or a box not editable: no code taken; a code that does not fit is not typed."""
    cred = await gate.create_credential("Acme")
    await mail_code(served, cred.inbox, "482913")
    page = await otp_tab(browser, otp_page("plain boxes", "482913"))
    missing = await fill_code(page, "#nowhere", gate, cred, wait=5, field_timeout=0.5)
    assert (missing.ok, missing.outcome, missing.source) == (False, "no_field", None)
    await page.evaluate("boxes[3].disabled = true")
    disabled = await fill_code(page, ".otp", gate, cred, wait=5, field_timeout=0.5)
    assert (disabled.ok, disabled.outcome) == (False, "no_field")
    still = await gate.code(cred)  # neither check took the code
    assert still is not None and still.value == "482913"

    page = await otp_tab(browser, otp_page("auto-advancing boxes", "48291"))
    await mail_code(served, cred.inbox, "48291")
    short = await fill_code(page, ".otp", gate, cred, submit="#verify", wait=10)
    assert (short.ok, short.outcome, short.source) == (False, "length_mismatch", "email")
    assert await page.evaluate("boxes.map(b => b.value).join('')") == ""
    assert await page.evaluate("window.typed") is None  # nothing submitted

    await page.set_content(
        otp_page("one field", "482913").replace("<input", '<input maxlength="4"')
    )
    await mail_code(served, cred.inbox, "739201")
    long = await fill_code(page, ".otp", gate, cred, submit="#verify", wait=10)
    assert (long.ok, long.outcome) == (False, "length_mismatch")
    assert await page.input_value("#code") == ""

    page = await otp_tab(browser, otp_page("boxes that refuse input", "1"))
    await mail_code(served, cred.inbox, "582047")
    refused = await fill_code(page, ".otp", gate, cred, submit="#verify", wait=10)
    assert (refused.ok, refused.outcome) == (False, "not_typed")
    assert await page.evaluate("window.typed") is None  # nothing submitted
