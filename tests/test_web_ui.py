"""The authentication center in a real Chromium: every flow, by the contract's accessible names.

The gateway is served on a loopback port that is also its public URL, and
Debian's Chromium (driven by Playwright for Python) signs in, enrols a
credential, answers an agent's request, hands out and revokes a key, reads
the audit log and signs out.  Every page fails the test on a console error
or a Content-Security-Policy violation, is scanned with axe-core (from the
npm registry, ``tests/web``) in light and dark, and is saved as screenshots
(desktop light and dark, phone) under ``docs/screenshots``.

Without Chromium, Playwright or axe-core the browser tests skip with the
reason, unless ``OTPGATE_REQUIRE_BROWSER=1``.  The checks that need no
browser (CSRF, origin, rate limit, headers, cookies, session expiry, the
message counts) run with a plain HTTP client.
"""

from __future__ import annotations

import asyncio
import collections
import io
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
import segno
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image, ImageDraw

from gateway.app import Gateway, Tuning
from gateway.demo.agent import CHROMIUM, CHROMIUM_ARGS
from gateway.errors import StoreUnavailable
from gateway.services.inbound import Message
from gateway.services.websessions import ABSOLUTE_SECONDS, IDLE_SECONDS
from gateway.settings import Settings
from gateway.web.charts import Series, bar_chart
from gateway.web.signin import ATTEMPTS_PER_MINUTE, SIGN_IN_LIMIT

from .helpers import (
    ADMIN,
    ROOT,
    Receiver,
    Served,
    bearer,
    eventually,
    make_settings,
    missing,
    need_browser,
    opened,
    parked,
    served_on_loopback,
)

AXE = ROOT / "tests" / "web" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "docs" / "screenshots"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
TOTP_URI = f"otpauth://totp/Bank:me%40example.com?secret={SECRET}&issuer=Bank"
NAME = "Bank <b>login</b>"
PASSWORD = "correct horse battery staple"
QR_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
QR_URI = f"otpauth://hotp/Payroll:ops?secret={QR_SECRET}&digits=8&counter=7&issuer=Payroll"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}


def need_axe() -> str:
    """axe-core's source, when ``npm ci --prefix tests/web`` installed it."""
    if not AXE.is_file():
        missing(f"{AXE} is absent (run npm ci --prefix tests/web)", "OTPGATE_REQUIRE_BROWSER")
    return AXE.read_text()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The real app on a loopback port that is also its public URL, with a mail relay named."""
    async with served_on_loopback(
        tmp_path, OTPGATE_SMTP_RELAY="smtp://127.0.0.1:9", OTPGATE_ALLOW_PRIVATE_TARGETS="1"
    ) as s:
        yield s


def enrolment_screenshot(qr_text: str | None) -> bytes:
    """A phone's screenshot of a site's two-factor enrolment page, with its QR code (or none)."""
    shot = Image.new("RGB", (750, 1334), (242, 242, 247))
    draw = ImageDraw.Draw(shot)
    draw.rectangle((0, 0, 750, 80), fill=(28, 28, 30))
    draw.text((40, 25), "9:41", fill="white", font_size=30)
    draw.text((40, 130), "Set up two-factor authentication", fill=(10, 10, 10), font_size=36)
    for line in range(6):
        draw.text((40, 200 + 36 * line), "Scan this code with your app", fill=(60, 60, 67))
    if qr_text is not None:
        out = io.BytesIO()
        segno.make(qr_text, error="m").save(out, kind="png", scale=6, border=4)
        qr = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
        shot.paste(qr, ((750 - qr.width) // 2, 480))
    draw.rounded_rectangle((40, 1180, 710, 1260), radius=20, fill=(0, 122, 255))
    out = io.BytesIO()
    shot.save(out, "PNG")
    return out.getvalue()


# -- the API, as an agent and an owner use it ----------------------------------------


class Api:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def call(
        self, method: str, path: str, key: str | None, body: Any = None
    ) -> tuple[int, Any]:
        headers = bearer(key) if key else ADMIN
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            data = await r.json() if r.content_type == "application/json" else None
            return r.status, data

    async def ok(self, method: str, path: str, key: str | None, body: Any = None) -> Any:
        status, data = await self.call(method, path, key, body)
        assert status in (200, 201, 204), (status, data)
        return data

    async def key(self, owner: str, name: str, role: str) -> str:
        made = await self.ok("POST", "/v1/keys", owner, {"name": name, "role": role})
        return str(made["key"])


# -- the browser: errors, accessibility, screenshots ---------------------------------


class Watch:
    """Console errors, page errors and CSP violations of every page of a context.

    A page the test expects to be refused (a 401, 403 or 422 document, whose
    status it checks) logs "Failed to load resource" for itself; that one
    message is not an error of the page.  Any failed stylesheet, script or
    image still is.
    """

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._refused_documents: set[str] = set()

    def _response(self, response: Any) -> None:
        if response.request.resource_type == "document" and response.status >= 400:
            self._refused_documents.add(response.url)

    def _console(self, page: Any, message: Any) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if message.text.startswith("Failed to load resource") and url in self._refused_documents:
            return
        self.errors.append(f"{page.url}: {message.text} ({url})")

    def attach(self, page: Any) -> Any:
        page.on("response", self._response)
        page.on("console", lambda m: self._console(page, m))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        return page


class Scanner:
    """axe-core on each page, light, dark and phone-wide; screenshots; totals per impact."""

    def __init__(self, axe: str) -> None:
        self.axe = axe
        self.totals: collections.Counter[str] = collections.Counter()
        self.serious: list[str] = []
        self.rules: collections.defaultdict[str, set[str]] = collections.defaultdict(set)
        self.overflows: list[str] = []

    async def _axe(self, page: Any, name: str, scheme: str) -> None:
        await page.emulate_media(color_scheme=scheme)
        if not await page.evaluate("typeof window.axe !== 'undefined'"):
            # Through the DevTools protocol: the page's CSP allows no inline script.
            await page.evaluate(self.axe)
        result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        for violation in result["violations"]:
            impact = violation.get("impact") or "unknown"
            self.totals[impact] += len(violation["nodes"])
            self.rules[f"{impact} {violation['id']}"].add(name)
            if impact in ("serious", "critical"):
                targets = [n["target"] for n in violation["nodes"]][:3]
                self.serious.append(f"{name} ({scheme}): {violation['id']} {targets}")

    async def page(self, page: Any, name: str) -> None:
        """Scan the page as it is and save it: desktop light and dark, then 375 px wide."""
        for scheme in ("light", "dark"):
            await self._axe(page, name, scheme)
            await page.screenshot(path=SHOTS / f"{name}-{scheme}.png")
        await page.emulate_media(color_scheme="light")
        await page.set_viewport_size(PHONE)
        try:
            width = await page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                self.overflows.append(f"{name} is {width} px wide on a phone")
            await self._axe(page, name + " on a phone", "light")
            await page.screenshot(path=SHOTS / f"{name}-phone.png", full_page=True)
        finally:
            await page.set_viewport_size(DESKTOP)


async def _browser(pw: Any) -> Any:
    return await pw.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )


async def _submit(page: Any, control: Any) -> Any:
    """Click *control* (a button or link); the response of the page it leads to, loaded."""
    async with page.expect_navigation() as navigation:
        await control.click()
    return await navigation.value


async def _go(page: Any, label: str) -> None:
    """Follow the main navigation's link *label*."""
    nav = page.get_by_role("navigation", name="Main")
    await _submit(page, nav.get_by_role("link", name=label, exact=True))


async def _sign_in(page: Any, base: str, key: str) -> None:
    await page.goto(f"{base}/ui/")
    await page.get_by_label("API key", exact=True).fill(key)
    await _submit(page, page.get_by_role("button", name="Sign in"))


async def _seed_counts(served: Served, tenant_id: str, cred_id: str) -> None:
    """Messages on earlier days (the chart's history), written as the inbound batch writes them."""
    from gateway.store import counts
    from gateway.timestamps import utc_day

    now = time.time()
    rows = []
    for days_ago, emails, texts in ((1, 3, 1), (2, 5, 2), (4, 2, 0), (7, 6, 3), (12, 1, 1)):
        day = utc_day(now - days_ago * 86400)
        rows += [counts.CountRow(tenant_id, cred_id, day, "email", True) for _ in range(emails)]
        rows += [counts.CountRow(tenant_id, cred_id, day, "sms", True) for _ in range(texts)]
    async with served.gateway.db.write() as conn:
        await counts.add(conn, rows)


# -- every flow ----------------------------------------------------------------------


async def test_every_flow_in_chromium(served: Served, tmp_path: Path) -> None:
    """Sign in, enrol, answer, keys, audit, sign out: no console error, no serious axe finding."""
    need_browser()
    axe = need_axe()
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    base = served.url
    scanner = Scanner(axe)
    watch = Watch()
    async with aiohttp.ClientSession() as http, async_playwright() as pw:
        api = Api(http, base)
        tenant = await api.ok("POST", "/v1/tenants", None, {"name": "acme"})
        owner_key = tenant["api_key"]
        agent_key = await api.key(owner_key, "checkout agent", "agent")
        manager_key = await api.key(owner_key, "ops manager", "manager")
        browser = await _browser(pw)
        try:
            desktop = await browser.new_context(viewport=DESKTOP)
            page = watch.attach(await desktop.new_page())

            # Sign-in: agent and admin keys are refused with the reason; the owner's works.
            shown = await page.goto(f"{base}/ui/")
            assert shown is not None and shown.status == 200
            await scanner.page(page, "sign-in")
            await _sign_in(page, base, agent_key)
            assert "Agent keys cannot sign in" in await page.get_by_role("alert").inner_text()
            await _sign_in(page, base, "not-a-key")
            assert "not valid" in await page.get_by_role("alert").inner_text()
            await _sign_in(page, base, owner_key)
            await expect(page.get_by_role("heading", name="Home")).to_be_visible()

            # Credentials: empty, then a new one through the form.
            await _go(page, "Credentials")
            await expect(page.get_by_text("No credentials yet.")).to_be_visible()
            await _submit(page, page.get_by_role("link", name="New credential").first)
            await scanner.page(page, "credential-new")
            await page.get_by_label("Name", exact=True).fill(NAME)
            await page.get_by_label("Username", exact=True).fill("me@example.com")
            await page.get_by_label("Password", exact=True).fill(PASSWORD)
            await _submit(page, page.get_by_role("button", name="Create"))
            await expect(page.get_by_role("heading", name=NAME)).to_be_visible()
            assert await page.get_by_role("status").inner_text() == "Credential created."
            cred_id = page.url.split("/credentials/")[1].split("?")[0]
            assert PASSWORD not in await page.content()

            # Authenticator by otpauth URI; a bad URI re-renders the form with the reason.
            await page.get_by_label("otpauth URI", exact=True).fill("otpauth://nope/x?secret=A")
            refused = await _submit(page, page.get_by_role("button", name="Save authenticator"))
            assert refused.status == 422
            assert "totp or hotp" in await page.get_by_role("alert").inner_text()
            await page.get_by_label("otpauth URI", exact=True).fill(TOTP_URI)
            await _submit(page, page.get_by_role("button", name="Save authenticator"))
            assert await page.get_by_role("status").inner_text() == "Authenticator saved."
            content = await page.content()
            assert SECRET not in content and SECRET.lower() not in content
            assert "TOTP" in await page.locator("dl.facts").inner_text()
            code = await api.ok("GET", f"/v1/credentials/{cred_id}/code", agent_key)
            assert code["code"] in {pyotp.TOTP(SECRET).at(time.time() + d) for d in (-30, 0, 30)}

            # Authenticator from a screenshot of the enrolment page (QR image upload).
            pictures = tmp_path / "pictures"
            pictures.mkdir()
            (pictures / "enrolment.png").write_bytes(enrolment_screenshot(QR_URI))
            (pictures / "no-code.png").write_bytes(enrolment_screenshot(None))
            (pictures / "huge.png").write_bytes(b"\x89PNG" + b"\0" * (5 * 1024 * 1024))
            for name, status, says in (
                ("no-code.png", 422, "QR"),
                ("huge.png", 413, "5 MiB"),
            ):
                await page.get_by_label("QR image", exact=True).set_input_files(pictures / name)
                refused = await _submit(page, page.get_by_role("button", name="Save authenticator"))
                assert refused.status == status, name
                assert says in await page.get_by_role("alert").inner_text(), name
            await page.get_by_label("QR image", exact=True).set_input_files(
                pictures / "enrolment.png"
            )
            await _submit(page, page.get_by_role("button", name="Save authenticator"))
            assert await page.get_by_role("status").inner_text() == "Authenticator saved."
            assert "HOTP" in await page.locator("dl.facts").inner_text()
            assert QR_SECRET not in await page.content()
            code = await api.ok("GET", f"/v1/credentials/{cred_id}/code", agent_key)
            assert code["code"] == pyotp.HOTP(QR_SECRET, digits=8).at(7)

            # Forwarding, messages received (the chart), and the search.
            await api.ok(
                "POST",
                f"/v1/credentials/{cred_id}/forwards",
                owner_key,
                {"channel": "email", "to": "person@example.com"},
            )
            await _seed_counts(served, tenant["id"], cred_id)
            inbound = served.gateway.services.inbound
            route = await inbound.route_for_inbox(
                (await api.ok("GET", f"/v1/credentials/{cred_id}", owner_key))["inbox"].split("@")[
                    0
                ]
            )
            assert route is not None
            await inbound.accept(
                Message(
                    "email", "no-reply@bank.example", "bank.example", "Your code", "Code: 482915"
                ),
                [route],
            )
            await page.reload()
            forwarding = page.locator("section", has=page.get_by_role("heading", name="Forwarding"))
            assert "person@example.com" in await forwarding.inner_text()
            assert "nothing sent yet" in await forwarding.inner_text()
            assert "482915" not in await page.content()
            await expect(page.get_by_role("heading", name="Backup codes")).to_be_visible()
            assert (
                "No backup codes"
                in await page.locator(
                    "section", has=page.get_by_role("heading", name="Backup codes")
                ).inner_text()
            )
            # Backup codes stored and a login made through the API show up here.
            backup = ["1111-2222", "3333-4444", "5555-6666", "7777-8888"]
            path = f"/v1/credentials/{cred_id}/backup-codes"
            await api.ok("PUT", path, owner_key, {"codes": backup})
            await api.ok("POST", path + "/take", agent_key)
            login = await api.ok("POST", f"/v1/credentials/{cred_id}/logins", agent_key, {})
            await api.ok(
                "POST", f"/v1/logins/{login['id']}/finish", agent_key, {"outcome": "succeeded"}
            )
            await page.reload()
            assert "3 left" in await page.locator("dl.facts").inner_text()
            shown = await page.content()
            assert not any(c in shown for c in backup)
            assert await page.locator("figure.chart rect.series-3").count() == 1  # the login
            bars = page.locator("figure.chart rect.bar")
            assert await bars.count() >= 5
            activity = page.locator(
                "section", has=page.get_by_role("heading", name="Recent activity")
            )
            assert "Authenticator saved" in await activity.inner_text()
            assert await activity.locator("time[datetime]").count() >= 1
            await scanner.page(page, "credential")
            for extra in ("Mail login", "Payroll portal", "Cloud console"):
                await api.ok(
                    "POST", "/v1/credentials", owner_key, {"name": extra, "username": "ops"}
                )
            await _go(page, "Credentials")
            assert await page.locator("tbody tr").count() == 4
            await scanner.page(page, "credentials")
            await page.get_by_label("Search credentials", exact=True).fill("payroll")
            await _submit(page, page.get_by_role("button", name="Search"))
            assert await page.locator("tbody tr").count() == 1
            await _go(page, "Home")
            stats = await page.locator(".stats").inner_text()
            # 17 emails and 7 texts on earlier days, and the one mail of today.
            assert "25\nmessages in 30 days" in stats and "18\nemails" in stats
            await scanner.page(page, "home")

            # An agent waits for a person's code; the person answers on the Interactions page.
            created = await api.ok(
                "POST",
                f"/v1/credentials/{cred_id}/interactions",
                agent_key,
                {"prompt": "Type the 6 digits the bank texted you"},
            )
            poll = asyncio.create_task(
                api.call("GET", f"/v1/interactions/{created['id']}/code?wait=30", agent_key)
            )
            await parked(served.gateway, created["id"])
            # And another agent asks a person to approve a sign-in.
            approval = await api.ok(
                "POST",
                f"/v1/credentials/{cred_id}/interactions",
                agent_key,
                {
                    "kind": "approval",
                    "prompt": "Sign-in from Chrome on Linux, Berlin",
                    "match": "47",
                },
            )
            await _go(page, "Interactions")
            row = page.locator(f"#request-{created['id']}")
            assert "left" in await row.locator(".countdown").inner_text()
            assert "bank texted you" in await row.inner_text()
            await scanner.page(page, "interactions")
            await row.get_by_label("Code", exact=True).fill("x" * 65)  # too long: the form says why
            await row.get_by_label("Code", exact=True).evaluate(
                "e => e.removeAttribute('maxlength')"
            )
            await row.get_by_label("Code", exact=True).fill("x" * 65)
            await _submit(page, row.get_by_role("button", name="Submit"))
            row = page.locator(f"#request-{created['id']}")
            assert "1 to 64" in await row.get_by_role("alert").inner_text()
            assert not poll.done()
            await row.get_by_label("Code", exact=True).fill("731904")
            await _submit(page, row.get_by_role("button", name="Submit"))
            assert "passed on" in await page.get_by_role("status").inner_text()
            status, body = await asyncio.wait_for(poll, 10)
            assert (status, body["code"]) == (200, "731904")
            assert "731904" not in await page.content()
            decision = asyncio.create_task(
                api.call("GET", f"/v1/interactions/{approval['id']}?wait=30", agent_key)
            )
            await parked(served.gateway, approval["id"])
            row = page.locator(f"#request-{approval['id']}")
            assert "Berlin" in await row.inner_text()
            assert await row.get_by_label("Number to match").inner_text() == "47"
            await _submit(page, row.get_by_role("button", name="Approved"))
            assert "approved" in await page.get_by_role("status").inner_text()
            status, body = await asyncio.wait_for(decision, 10)
            assert (status, body["status"]) == (200, "approved")
            await expect(page.get_by_text("No open requests.")).to_be_visible()

            # Webhooks: the endpoint and what is queued for it, never its secret.
            hook = await api.ok(
                "POST",
                "/v1/webhooks",
                owner_key,
                {"url": "http://127.0.0.1:9/hook", "events": ["code.received"]},
            )
            await _go(page, "Webhooks")
            assert "http://127.0.0.1:9/hook" in await page.content()
            assert hook["secret"] not in await page.content()
            await scanner.page(page, "webhooks")

            # API keys: create one (shown once), use it, revoke it: the API refuses it.
            await _go(page, "API keys")
            await scanner.page(page, "keys")
            limit = page.get_by_label("Limit to credentials (optional)", exact=True)
            await page.get_by_label("Name", exact=True).fill("temporary agent")
            await page.get_by_label("Role", exact=True).select_option("owner")
            await limit.select_option(label=NAME)
            refused = await _submit(page, page.get_by_role("button", name="Create key"))
            assert refused.status == 422  # an owner key reaches every credential
            assert "owner key" in await page.get_by_role("alert").inner_text()
            assert await page.get_by_label("Name", exact=True).input_value() == "temporary agent"
            await page.get_by_label("Role", exact=True).select_option("agent")
            await _submit(page, page.get_by_role("button", name="Create key"))
            new_key = (await page.locator("#new-key").inner_text()).strip()
            assert "only time it is shown" in await page.get_by_role("alert").inner_text()
            await scanner.page(page, "key-created")
            reached = await api.ok("GET", "/v1/credentials", new_key)
            assert [c["id"] for c in reached["credentials"]] == [cred_id]
            await _submit(page, page.get_by_role("link", name="Done"))
            assert new_key not in await page.content()
            await _submit(page, page.get_by_role("button", name="Revoke temporary agent"))
            assert "revoked" in await page.get_by_role("status").inner_text()
            assert (await api.call("GET", "/v1/credentials", new_key))[0] == 401

            # The audit log, filtered by action and by credential.
            await _go(page, "Audit log")
            await page.get_by_label("Action", exact=True).select_option("key.revoked")
            await _submit(page, page.get_by_role("button", name="Filter"))
            rows = page.locator("tbody tr")
            assert await rows.count() == 1
            assert "temporary agent" not in await rows.inner_text()  # revoked: shown by id
            await page.get_by_label("Action", exact=True).select_option("")
            await page.get_by_label("Credential", exact=True).select_option(label=NAME)
            await _submit(page, page.get_by_role("button", name="Filter"))
            actions = await page.locator("tbody td[data-label='Action']").all_inner_texts()
            assert {"credential.created", "authenticator.set", "interaction.answered"} <= set(
                actions
            )
            assert "key.created" not in actions
            await scanner.page(page, "audit")

            # A manager signs in too: no keys or audit pages for them.
            other = await browser.new_context(viewport=DESKTOP)
            second = watch.attach(await other.new_page())
            await _sign_in(second, base, manager_key)
            nav = second.get_by_role("navigation", name="Main")
            await expect(nav.get_by_role("link", name="Credentials")).to_be_visible()
            assert await nav.get_by_role("link", name="API keys").count() == 0
            refused_page = await second.goto(f"{base}/ui/keys")
            assert refused_page is not None and refused_page.status == 403
            # Revoking the manager's key ends their session at the next request.
            managers = await api.ok("GET", "/v1/keys", owner_key)
            (manager,) = [k for k in managers["keys"] if k["name"] == "ops manager"]
            await api.ok("DELETE", f"/v1/keys/{manager['id']}", owner_key)
            await second.goto(f"{base}/ui/credentials")
            await expect(second.get_by_role("button", name="Sign in")).to_be_visible()
            await other.close()

            # The same pages on a phone, then sign out.
            # A form whose CSRF token was tampered with is refused, and nothing is made.
            await page.goto(f"{base}/ui/credentials/new")
            await page.locator("#main input[name=csrf]").evaluate("e => e.value = 'forged'")
            await page.get_by_label("Name", exact=True).fill("Forged")
            forged = await _submit(page, page.get_by_role("button", name="Create"))
            assert forged.status == 403
            assert "expired" in await page.get_by_role("alert").inner_text()
            listed = await api.ok("GET", "/v1/credentials", owner_key)
            assert "Forged" not in {c["name"] for c in listed["credentials"]}

            await _submit(page, page.get_by_role("button", name="Sign out"))
            await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            await page.goto(f"{base}/ui/credentials")
            await expect(page.get_by_label("API key", exact=True)).to_be_visible()

            # Guessing keys from one address soon meets the limit; a key that worked
            # before is still let in. (The limiter's clock stands still meanwhile.)
            limiter = served.gateway.app[SIGN_IN_LIMIT]
            still = limiter.clock()
            limiter.clock = lambda: still
            limiter.hold = 0.1
            for _ in range(ATTEMPTS_PER_MINUTE):
                await _sign_in(page, base, "guess")
                if await page.get_by_role("heading", name="Too many tries").count():
                    break
            else:
                pytest.fail("sign-in attempts were never limited")
            await _sign_in(page, base, owner_key)
            await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        finally:
            await browser.close()
    print(f"\naxe-core violations by impact (nodes): {dict(scanner.totals) or 'none'}")
    for rule, where in sorted(scanner.rules.items()):
        print(f"  {rule}: {', '.join(sorted(where))}")
    assert scanner.serious == [], scanner.serious
    assert scanner.overflows == [], scanner.overflows
    assert watch.errors == [], watch.errors


async def test_start_page_and_reference_in_chromium(served: Served) -> None:
    """`/` links the authentication center, the reference and health; `/docs` shows every
    operation of /openapi.json from the gateway's own assets: no console error, no
    serious axe finding, no overflow on a phone."""
    need_browser()
    axe = need_axe()
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    base = served.url
    scanner = Scanner(axe)
    watch = Watch()
    elsewhere: list[str] = []
    async with async_playwright() as pw:
        browser = await _browser(pw)
        try:
            context = await browser.new_context(viewport=DESKTOP)
            page = watch.attach(await context.new_page())
            page.on(
                "request",
                lambda r: None if r.url.startswith(base) else elsewhere.append(r.url),
            )
            await page.goto(f"{base}/")
            await expect(page.get_by_role("heading", name="otpgate", exact=True)).to_be_visible()
            await scanner.page(page, "start")
            for label in ("Authentication center", "API reference", "Health"):
                await expect(page.get_by_role("link", name=label, exact=True)).to_be_visible()

            await _submit(page, page.get_by_role("link", name="API reference", exact=True))
            await expect(page.get_by_role("heading", name="API reference")).to_be_visible()
            async with aiohttp.ClientSession() as http, http.get(f"{base}/openapi.json") as resp:
                doc = await resp.json()
            for path, item in doc["paths"].items():
                for method, op in item.items():
                    if method == "parameters":
                        continue
                    article = page.locator(f"article#{op['operationId']}")
                    await expect(article).to_contain_text(f"{method.upper()} {path}")
            await scanner.page(page, "api-reference")

            await page.goto(f"{base}/")
            await _submit(page, page.get_by_role("link", name="Authentication center"))
            await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        finally:
            await browser.close()
    assert elsewhere == []
    assert scanner.serious == [], scanner.serious
    assert scanner.overflows == [], scanner.overflows
    assert watch.errors == [], watch.errors


# -- without a browser: what a person's browser must be refused ------------------------


class Visitor:
    """A plain HTTP client that keeps the pages' cookies, as a browser would."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path, allow_redirects=False) as r:
            return r.status, await r.text()

    async def post(
        self, path: str, data: dict[str, str], *, origin: str | None = "self"
    ) -> aiohttp.ClientResponse:
        headers = {"Origin": self.base if origin == "self" else origin} if origin else {}
        async with self.http.post(
            self.base + path, data=data, headers=headers, allow_redirects=False
        ) as r:
            await r.read()
            return r

    @staticmethod
    def token(html: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found is not None
        return found.group(1)

    async def sign_in(self, key: str) -> aiohttp.ClientResponse:
        _, html = await self.get("/ui/")
        return await self.post("/ui/sign-in", {"csrf": self.token(html), "api_key": key})


def _jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)  # the pages are served on 127.0.0.1


async def test_forms_need_their_csrf_token_and_the_gateways_origin(served: Served) -> None:
    """A POST without the token, with another session's token or from another origin is refused."""
    async with aiohttp.ClientSession(cookie_jar=_jar()) as http:
        tenant = await Api(http, served.url).ok("POST", "/v1/tenants", None, {"name": "a"})
        async with aiohttp.ClientSession(cookie_jar=_jar()) as other_http:
            other = Visitor(other_http, served.url)
            assert (await other.sign_in(tenant["api_key"])).status == 303
            _, html = await other.get("/ui/credentials/new")
            foreign = other.token(html)
        me = Visitor(http, served.url)
        assert (await me.sign_in(tenant["api_key"])).status == 303
        _, html = await me.get("/ui/credentials/new")
        mine = me.token(html)
        for data, origin in (
            ({"name": "x"}, "self"),
            ({"name": "x", "csrf": "0" * 64}, "self"),
            ({"name": "x", "csrf": foreign}, "self"),
            ({"name": "x", "csrf": mine}, "https://evil.example"),
            ({"name": "x", "csrf": mine}, None),
        ):
            refused = await me.post("/ui/credentials", data, origin=origin)
            assert refused.status == 403, (data, origin)
            assert refused.content_type == "text/html"
        listed = await Api(http, served.url).ok("GET", "/v1/credentials", tenant["api_key"])
        assert listed["credentials"] == []
        made = await me.post("/ui/credentials", {"name": "x", "csrf": mine})
        assert made.status == 303
        # The authenticator form (multipart) too: a forged token is refused before the file.
        where = made.headers["Location"].split("?")[0] + "/authenticator"
        for token in ("forged", None):
            upload = aiohttp.FormData()
            if token:
                upload.add_field("csrf", token)
            upload.add_field("qr_image", b"\x89PNG" + b"\0" * 1000, filename="qr.png")
            async with http.post(
                served.url + where, data=upload, headers={"Origin": served.url}
            ) as r:
                assert r.status == 403
        cred_id = where.split("/")[-2]
        shown = await Api(http, served.url).ok(
            "GET", f"/v1/credentials/{cred_id}", tenant["api_key"]
        )
        assert shown["authenticator"] is None
        # Signing out needs the token too.
        assert (await me.post("/ui/sign-out", {})).status == 403
        assert (await me.get("/ui/credentials"))[0] == 200


async def test_sign_in_attempts_are_limited_per_address(served: Served) -> None:
    """After the burst of failed sign-ins from one address, guesses wait (429, Retry-After);
    a valid key still signs in, and sessions made before keep working."""
    async with aiohttp.ClientSession(cookie_jar=_jar()) as http:
        tenant = await Api(http, served.url).ok("POST", "/v1/tenants", None, {"name": "a"})
        me = Visitor(http, served.url)
        limiter = served.gateway.app[SIGN_IN_LIMIT]
        still = limiter.clock()
        limiter.clock = lambda: still  # no token comes back during the test
        limiter.hold = 0.1
        assert (await me.sign_in(tenant["api_key"])).status == 303
        for _ in range(ATTEMPTS_PER_MINUTE):
            assert (await me.sign_in("wrong-key")).status == 401
        limited = await me.sign_in("wrong-key")
        assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
        assert (await me.sign_in(tenant["api_key"])).status == 303
        status, html = await me.get("/ui/")
        assert status == 200 and "Home" in html


async def test_a_page_the_store_cannot_answer_says_when_to_come_back(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the database out of reach a page is a 503 page with Retry-After, as the API is."""
    tenants = served.gateway.services.tenants

    async def unreachable(key: str) -> Any:
        raise StoreUnavailable("the database cannot be reached")

    monkeypatch.setattr(tenants, "authenticate", unreachable)
    async with aiohttp.ClientSession(cookie_jar=_jar()) as http:
        answer = await Visitor(http, served.url).sign_in("otpg_some_key")
    assert answer.status == 503 and answer.content_type == "text/html"
    assert int(answer.headers["Retry-After"]) >= 1


async def test_pages_carry_strict_headers_and_the_session_cookie_is_locked_down(
    served: Served,
) -> None:
    """CSP, nosniff, no-store on every page; the cookie is HttpOnly, SameSite=Strict, Path=/ui/."""
    async with aiohttp.ClientSession(cookie_jar=_jar()) as http:
        tenant = await Api(http, served.url).ok("POST", "/v1/tenants", None, {"name": "a"})
        me = Visitor(http, served.url)
        signed = await me.sign_in(tenant["api_key"])
        cookie = signed.cookies["otpgate_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/ui/"
        assert not cookie["secure"]  # served over http here; see the https test below
        for path in ("/ui/", "/ui/credentials", "/ui/interactions", "/ui/keys", "/ui/nowhere"):
            async with http.get(served.url + path) as r:
                csp = r.headers["Content-Security-Policy"]
                assert "default-src 'none'" in csp and "script-src 'self'" in csp
                assert "'unsafe-inline'" not in csp
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert r.headers["Cache-Control"] == "no-store"
                assert r.content_type == "text/html"
                html = await r.text()
                assert "<script>" not in html and " style=" not in html


async def test_the_session_cookie_is_secure_under_an_https_public_url(tmp_path: Path) -> None:
    """With an https OTPGATE_PUBLIC_URL, the session cookie is sent over https only."""
    public = "https://otp.example"
    async with opened(make_settings(tmp_path, OTPGATE_PUBLIC_URL=public)) as gateway:
        tenant = await gateway.services.tenants.create("a")
        async with TestClient(TestServer(gateway.app)) as client:
            async with client.get("/ui/") as r:
                token = Visitor.token(await r.text())
                seed = r.cookies["otpgate_presession"]
                assert seed["secure"]
            r = await client.post(
                "/ui/sign-in",
                data={"csrf": token, "api_key": tenant.api_key},
                headers={"Origin": public, "Cookie": f"otpgate_presession={seed.value}"},
                allow_redirects=False,
            )
            assert r.status == 303
            assert r.cookies["otpgate_session"]["secure"]


async def test_sessions_end_when_idle_or_old_and_forms_tokens_are_per_session(
    settings: Settings,
) -> None:
    """A session ends after its idle time or its absolute lifetime; each has its own CSRF token."""
    now = [1_800_000_000.0]
    async with opened(settings, tuning=Tuning(clock=lambda: now[0])) as gateway:
        sessions = gateway.services.web_sessions
        tenant = await gateway.services.tenants.create("a")
        principal = await gateway.services.tenants.authenticate(tenant.api_key)
        assert principal.key_id is not None
        first = await sessions.start(tenant.id, principal.key_id)
        second = await sessions.start(tenant.id, principal.key_id)
        assert sessions.csrf_token(first) != sessions.csrf_token(second)
        assert sessions.csrf_ok(first, sessions.csrf_token(first))
        assert not sessions.csrf_ok(first, sessions.csrf_token(second))
        # Used every 20 minutes, the first lives until its absolute end.
        while now[0] + 20 * 60 < 1_800_000_000.0 + ABSOLUTE_SECONDS:
            now[0] += 20 * 60
            assert await sessions.find(first) is not None
        assert await sessions.find(second) is None  # idle far longer than IDLE_SECONDS
        now[0] = 1_800_000_000.0 + ABSOLUTE_SECONDS
        assert await sessions.find(first) is None
        third = await sessions.start(tenant.id, principal.key_id)
        now[0] += IDLE_SECONDS - 1
        assert await sessions.find(third) is not None
        now[0] += IDLE_SECONDS
        assert await sessions.find(third) is None
        assert await sessions.find("") is None and await sessions.find("x" * 500) is None


async def test_messages_are_counted_per_day_and_channel_in_their_own_write(
    gateway: Gateway,
) -> None:
    """Each stored message counts once for its credential's day and channel (code or not)."""
    services = gateway.services
    tenant = await services.tenants.create("a")
    cred = await services.credentials.create(tenant.id, name="c", username=None, password=None)
    route = await services.inbound.route_for_inbox(cred.inbox.split("@")[0])
    assert route is not None
    with_code = Message("email", "a@bank.example", "bank.example", "Code", "Your code: 123456")
    without = Message("email", "a@bank.example", "bank.example", "Hello", "Welcome aboard")
    text = Message("sms", "+14155550100", "", "", "Your code is 654321")
    await asyncio.gather(
        services.inbound.accept(with_code, [route]),
        services.inbound.accept(without, [route]),
        services.inbound.accept(text, [route]),
        services.inbound.accept(with_code, [route]),
    )
    daily = await services.message_counts.daily(tenant.id)
    assert len(daily.days) == 30
    assert daily.total("email").messages == 3 and daily.total("email").codes == 2
    assert daily.total("sms").messages == 1 and daily.total("sms").codes == 1
    assert daily.per_day()[-1].messages == 4 and sum(c.messages for c in daily.per_day()) == 4
    other = await services.tenants.create("b")
    assert (await services.message_counts.daily(other.id)).total().messages == 0


async def test_credentials_are_found_by_name_username_or_inbox(gateway: Gateway) -> None:
    """The search matches any part of a name, username or inbox, case aside; % and _ are text."""
    services = gateway.services
    tenant = await services.tenants.create("a")
    made = {}
    for name, username in (
        ("Bank login", "me@bank.example"),
        ("100% Cloud", None),
        ("Mail_box", "ops"),
        ("Payroll", "OPS-team"),
    ):
        made[name] = await services.credentials.create(
            tenant.id, name=name, username=username, password=None
        )
    other = await services.tenants.create("b")
    await services.credentials.create(other.id, name="Bank login", username=None, password=None)

    async def names(text: str | None, **kw: Any) -> list[str]:
        found = await services.credentials.search(tenant.id, text=text, **kw)
        return [c.name for c in found]

    assert await names(None) == ["100% Cloud", "Bank login", "Mail_box", "Payroll"]
    assert await names("BANK") == ["Bank login"]
    assert await names("ops") == ["Mail_box", "Payroll"]
    assert await names("%") == ["100% Cloud"]
    assert await names("_") == ["Mail_box"]
    assert await names(made["Payroll"].inbox.split("@")[0][-6:]) == ["Payroll"]
    assert await names(None, offset=1, limit=2) == ["Bank login", "Mail_box"]
    assert await names(None, only=[made["Payroll"].id]) == ["Payroll"]


async def test_a_manager_limited_to_some_credentials_sees_only_those(served: Served) -> None:
    """A limited manager lists and opens only their credentials; tenant-wide pages answer 403."""
    async with aiohttp.ClientSession(cookie_jar=_jar()) as http:
        api = Api(http, served.url)
        owner_key = (await api.ok("POST", "/v1/tenants", None, {"name": "a"}))["api_key"]
        mine = await api.ok("POST", "/v1/credentials", owner_key, {"name": "Mine"})
        theirs = await api.ok("POST", "/v1/credentials", owner_key, {"name": "Theirs"})
        made = await api.ok(
            "POST",
            "/v1/keys",
            owner_key,
            {"name": "limited", "role": "manager", "credential_ids": [mine["id"]]},
        )
        me = Visitor(http, served.url)
        assert (await me.sign_in(made["key"])).status == 303
        status, html = await me.get("/ui/credentials")
        assert status == 200 and "Mine" in html and "Theirs" not in html
        assert (await me.get(f"/ui/credentials/{mine['id']}"))[0] == 200
        assert (await me.get(f"/ui/credentials/{theirs['id']}"))[0] == 404
        for path in ("/ui/credentials/new", "/ui/webhooks", "/ui/keys", "/ui/audit"):
            assert (await me.get(path))[0] == 403, path
        status, html = await me.get("/ui/")
        assert status == 200 and "API keys" not in html and "Audit log" not in html
        assert (await me.get("/ui"))[0] == 303


def test_bar_charts_stack_or_stand_side_by_side_on_a_round_scale() -> None:
    """Stacked bars add up to the day's total; side-by-side bars share the day; the top is round."""
    days = ["2026-11-30", "2026-12-01", "2026-12-02"]
    email = Series("emails", "series-1", [3, 0, 7])
    sms = Series("texts", "series-2", [1, 0, 2])
    stacked = bar_chart(days, [email, sms], stacked=True, what="messages")
    assert stacked.top == 10 and not stacked.empty
    assert [b.title for b in stacked.bars] == [
        "30 Nov: 3 emails",
        "30 Nov: 1 texts",
        "2 Dec: 7 emails",
        "2 Dec: 2 texts",
    ]
    plot = stacked.gridlines[-1] - stacked.gridlines[0]
    nine = [b for b in stacked.bars if b.title.startswith("2 Dec")]
    assert sum(b.h for b in nine) == pytest.approx(plot * 9 / 10, abs=0.05)
    assert nine[1].y + nine[1].h == pytest.approx(nine[0].y, abs=0.05)  # texts on top of emails
    side = bar_chart(days, [email, sms], stacked=False, what="codes and logins")
    assert side.top == 10
    first = [b for b in side.bars if b.title.startswith("30 Nov")]
    assert first[0].x + first[0].w == pytest.approx(first[1].x, abs=0.05)
    assert "12 texts" not in side.summary and "3 texts in all" in side.summary
    assert bar_chart(days, [Series("x", "series-1", [0, 0, 0])], stacked=True, what="x").empty
    assert [
        bar_chart(days, [Series("x", "s", [p, 0, 0])], stacked=True, what="x").top
        for p in (1, 3, 20, 21, 600)
    ] == [1, 5, 20, 50, 1000]


async def test_the_webhooks_page_shows_what_became_of_recent_deliveries(tmp_path: Path) -> None:
    """Delivered and failed attempts are listed with their status; the signing secret never is."""
    receiver = await Receiver().start()
    try:
        async with (
            served_on_loopback(tmp_path, background=True, OTPGATE_ALLOW_PRIVATE_TARGETS="1") as s,
            aiohttp.ClientSession(cookie_jar=_jar()) as http,
        ):
            api = Api(http, s.url)
            key = (await api.ok("POST", "/v1/tenants", None, {"name": "a"}))["api_key"]
            hook = await api.ok(
                "POST",
                "/v1/webhooks",
                key,
                {"url": receiver.url, "events": ["interaction.code_required"]},
            )
            cred = await api.ok("POST", "/v1/credentials", key, {"name": "c"})
            path = f"/v1/credentials/{cred['id']}/interactions"
            await api.ok("POST", path, key, {})

            async def seen(count: int) -> bool:
                return len(receiver.seen) >= count

            await eventually(lambda: seen(1))
            receiver.status = 500
            await api.ok("POST", path, key, {})
            await eventually(lambda: seen(2))
            me = Visitor(http, s.url)
            assert (await me.sign_in(key)).status == 303

            async def listed() -> bool:
                html = (await me.get("/ui/webhooks"))[1]
                return "delivered" in html and "failed, will retry" in html

            await eventually(listed)
            status, html = await me.get("/ui/webhooks")
            assert status == 200 and receiver.url in html and "HTTP 500" in html
            assert hook["secret"] not in html and hook["secret"].removeprefix("whsec_") not in html
    finally:
        await receiver.stop()
