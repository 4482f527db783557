"""User-driven submission: interactions, their submit URL and page, and once-only hand-out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select, text

from gateway import ids
from gateway.app import Gateway
from gateway.services.interactions import InteractionService, fill_submit_url
from gateway.services.waiters import Bells
from gateway.store.models import Interaction, ReceivedCode, Webhook, WebhookDelivery
from gateway.vault import Vault

from .helpers import parked

Client = TestClient[Any, Any]

ALL_EVENTS = ",interaction.code_required,interaction.code_submitted,interaction.expired,"


async def setup_tenant(
    client: Client, new_tenant: Any, gateway: Gateway, *, name: str = "Bank <b>&</b> Co"
) -> tuple[dict[str, str], str, str]:
    """A tenant with a webhook subscribed to every interaction event, and one credential."""
    tenant = await new_tenant()
    h = tenant["headers"]
    resp = await client.post("/v1/credentials", json={"name": name}, headers=h)
    assert resp.status == 201, await resp.text()
    async with gateway.db.write() as conn:
        # Inserted directly: the deliveries are what this file checks, not the endpoint API.
        await conn.execute(
            insert(Webhook).values(
                id=ids.new_id("whk"),
                tenant_id=tenant["id"],
                url="https://hooks.example.com/otpgate",
                events=ALL_EVENTS,
                enabled=True,
                data_key=b"unused",
                key_version=1,
                secret=b"unused",
                created_at=time.time(),
            )
        )
    return h, tenant["id"], (await resp.json())["id"]


async def open_interaction(
    client: Client, h: dict[str, str], cred: str, prompt: str | None = "Enter the SMS code"
) -> dict[str, Any]:
    body = {} if prompt is None else {"prompt": prompt}
    resp = await client.post(f"/v1/credentials/{cred}/interactions", json=body, headers=h)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def path_of(url: str) -> str:
    return urlsplit(url).path


async def deliveries(gateway: Gateway, event: str | None = None) -> list[dict[str, Any]]:
    """The queued webhook bodies, parsed, oldest first."""
    stmt = select(WebhookDelivery.event, WebhookDelivery.body).order_by(WebhookDelivery.created_at)
    async with gateway.db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    return [json.loads(r.body) for r in rows if event is None or r.event == event]


def service(gateway: Gateway, clock: list[float], *, ttl: int = 60) -> InteractionService:
    """The interaction service on the gateway's store, with a clock the test moves."""
    return InteractionService(
        gateway.db,
        Vault(gateway.keyring),
        Bells(),
        ttl=ttl,
        public_url="https://gw.example",
        events_queued=lambda: None,
        clock=lambda: clock[0],
    )


# -- the API --------------------------------------------------------------------------


async def test_open_submit_and_take(client: Client, new_tenant: Any, gateway: Gateway) -> None:
    """An opened interaction is pending, takes one code by API and hands it out once."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    assert created["status"] == "pending"
    assert set(created) >= {"id", "status", "expires_at", "submit_url"}
    public = gateway.settings.public_url
    assert created["submit_url"].startswith(f"{public}/submit/")
    assert len(created["submit_url"].rsplit("/", 1)[1]) >= 43  # 256 random bits
    url = f"/v1/interactions/{created['id']}"
    shown = await (await client.get(url, headers=h)).json()
    assert shown["status"] == "pending" and "submit_url" not in shown
    assert (await client.get(f"{url}/code", headers=h)).status == 204
    assert (await client.post(f"{url}/code", json={"code": " 123456 "}, headers=h)).status == 204
    shown = await (await client.get(url, headers=h)).json()
    assert (shown["status"], shown["delivered"]) == ("answered", False)
    resp = await client.get(f"{url}/code", headers=h)
    assert resp.status == 200
    assert (await resp.json())["code"] == "123456"
    assert resp.headers["Cache-Control"] == "no-store"
    again = await client.get(f"{url}/code", headers=h)
    assert again.status == 410
    assert (await again.json())["error"]["code"] == "already_delivered"
    shown = await (await client.get(url, headers=h)).json()
    assert (shown["status"], shown["delivered"]) == ("answered", True)


async def test_second_submission_is_409(client: Client, new_tenant: Any, gateway: Gateway) -> None:
    """Once a code was submitted, another one (by API or submit URL) is a 409."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    url = f"/v1/interactions/{created['id']}/code"
    assert (await client.post(url, json={"code": "111111"}, headers=h)).status == 204
    resp = await client.post(url, json={"code": "222222"}, headers=h)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "already_answered"
    page = path_of(created["submit_url"])
    assert (await client.post(page, json={"code": "333333"})).status == 409
    assert (await (await client.get(url, headers=h)).json())["code"] == "111111"


async def test_empty_body_and_bad_prompts(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """No body opens an interaction without prompt; long or control-character prompts are 422."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    resp = await client.post(f"/v1/credentials/{cred}/interactions", headers=h)
    assert resp.status == 201
    assert (await resp.json())["prompt"] is None
    url = f"/v1/credentials/{cred}/interactions"
    for prompt in ("x" * 501, "a\x00b", "bell\x07"):
        resp = await client.post(url, json={"prompt": prompt}, headers=h)
        assert resp.status == 422, prompt
    resp = await client.post(url, json={"prompt": "x" * 500}, headers=h)
    assert resp.status == 201
    resp = await client.post(url, json={"prompt": "hi", "colour": 1}, headers=h)
    assert resp.status == 422
    missing = f"/v1/credentials/{ids.new_id(ids.CREDENTIAL)}/interactions"
    assert (await client.post(missing, json={}, headers=h)).status == 404


async def test_five_tries_then_429(client: Client, new_tenant: Any, gateway: Gateway) -> None:
    """Refused answers count: after five tries even a good code is refused with 429."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    url = f"/v1/interactions/{created['id']}/code"
    for bad in ("", "   ", "x" * 65, "12\x0034", "12\n34"):
        resp = await client.post(url, json={"code": bad}, headers=h)
        assert resp.status == 422, bad
    resp = await client.post(url, json={"code": "123456"}, headers=h)
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "too_many_attempts"
    shown = await (await client.get(f"/v1/interactions/{created['id']}", headers=h)).json()
    assert shown["attempts"] == 5 and shown["status"] == "pending"
    page = await client.get(path_of(created["submit_url"]))
    assert page.status == 429


async def test_fifth_try_may_succeed(client: Client, new_tenant: Any, gateway: Gateway) -> None:
    """Four refused answers still leave the fifth try, which stores a good code."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    url = f"/v1/interactions/{created['id']}/code"
    for _ in range(4):
        assert (await client.post(url, json={"code": ""}, headers=h)).status == 422
    assert (await client.post(url, json={"code": "A1-b2"}, headers=h)).status == 204
    assert (await (await client.get(url, headers=h)).json())["code"] == "A1-b2"


async def test_another_tenants_interaction_is_not_found(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """Every interaction route answers 404 to another tenant, and changes nothing."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    other = (await new_tenant("other"))["headers"]
    url = f"/v1/interactions/{created['id']}"
    creating = await client.post(f"/v1/credentials/{cred}/interactions", json={}, headers=other)
    assert creating.status == 404
    assert (await client.get(url, headers=other)).status == 404
    assert (await client.get(f"{url}/code", headers=other)).status == 404
    resp = await client.post(f"{url}/code", json={"code": "123456"}, headers=other)
    assert resp.status == 404
    shown = await (await client.get(url, headers=h)).json()
    assert shown["status"] == "pending" and shown["attempts"] == 0
    for bad in ("int_x", "int_" + "a" * 16, "../code"):
        assert (await client.get(f"/v1/interactions/{bad}", headers=h)).status == 404


async def test_long_poll_is_woken_by_the_answer(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """A GET with wait returns the moment a code is submitted, not at the end of wait."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    url = f"/v1/interactions/{created['id']}/code"
    started = time.monotonic()
    waiting = asyncio.create_task(client.get(f"{url}?wait=20", headers=h))
    await parked(gateway, created["id"])
    assert not waiting.done()
    assert (await client.post(path_of(created["submit_url"]), json={"code": "98765"})).status == 204
    resp = await asyncio.wait_for(waiting, 5)
    assert resp.status == 200
    assert (await resp.json())["code"] == "98765"
    assert time.monotonic() - started < 5


async def test_expiry_over_http(gateway: Gateway, tmp_path: Path, aiohttp_client: Any) -> None:
    """With a 1 s TTL the request answers 410 to every call once its time is up."""

    from .helpers import make_settings, opened

    url = gateway.settings.database_url
    if gateway.db.is_sqlite:  # one gateway per SQLite file: this one gets its own
        url = f"sqlite:///{tmp_path / 'short' / 'otpgate.db'}"
    settings = make_settings(
        tmp_path / "short",
        url,
        OTPGATE_MASTER_KEY_FILE=str(gateway.settings.master_key_file),
        OTPGATE_INTERACTION_TTL="1",
    )
    async with opened(settings) as short:
        c = await aiohttp_client(short.app)
        h, _, cred = await setup_tenant(c, new_tenant_for(c), short)
        created = await open_interaction(c, h, cred)
        url = f"/v1/interactions/{created['id']}"
        started = time.monotonic()
        resp = await c.get(f"{url}/code?wait=10", headers=h)
        assert resp.status == 410  # the long poll reports the expiry, not a 204 at 10 s
        assert time.monotonic() - started < 5
        assert (await c.post(f"{url}/code", json={"code": "1"}, headers=h)).status == 410
        assert (await (await c.get(url, headers=h)).json())["status"] == "expired"
        page = await c.get(path_of(created["submit_url"]))
        assert page.status == 410 and "expired" in await page.text()
        form = await c.post(path_of(created["submit_url"]), data={"code": "1"})
        assert form.status == 410 and form.content_type == "text/html"
        assert len(await deliveries(short, "interaction.expired")) == 1


def new_tenant_for(c: Client) -> Callable[..., Any]:
    """``new_tenant`` for a second test client."""
    from .helpers import ADMIN, bearer

    async def create(name: str = "acme") -> dict[str, Any]:
        resp = await c.post("/v1/tenants", json={"name": name}, headers=ADMIN)
        body: dict[str, Any] = await resp.json()
        body["headers"] = bearer(body["api_key"])
        return body

    return create


# -- expiry and the sweeper (service level, with a clock the test moves) ----------------


async def test_sweeper_expires_and_queues_once_with_nobody_waiting(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """The sweeper marks a timed-out request expired and queues interaction.expired once."""
    h, tenant, cred = await setup_tenant(client, new_tenant, gateway)
    clock = [1_900_000_000.0]
    svc = service(gateway, clock)
    opened = await svc.create(tenant, cred, prompt="code?")
    assert await svc.sweep() == 0
    clock[0] += 59.9
    assert await svc.sweep() == 0
    clock[0] += 0.2
    assert await svc.sweep() == 1
    assert await svc.sweep() == 0
    assert (await svc.get(tenant, opened.id)).status == "expired"
    events = await deliveries(gateway, "interaction.expired")
    assert len(events) == 1
    assert events[0]["data"] == {
        "interaction_id": opened.id,
        "credential_id": cred,
        "expires_at": datetime.fromtimestamp(1_900_000_060, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "answered": False,
    }
    # Over HTTP (real clock: long past), the request is expired too.
    resp = await client.get(f"/v1/interactions/{opened.id}/code", headers=h)
    assert resp.status == 410
    # A week later a finished request is forgotten.
    clock[0] += 7 * 24 * 3600 + 61
    later = service(gateway, clock)
    assert await later.sweep() == 0
    assert (await client.get(f"/v1/interactions/{opened.id}", headers=h)).status == 404


async def test_expiry_is_queued_once_under_races(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """Sweepers, readers and takers racing on a timed-out request queue one event."""
    _, tenant, cred = await setup_tenant(client, new_tenant, gateway)
    clock = [1_900_000_000.0]
    svc, other = service(gateway, clock), service(gateway, clock)
    opened = [await svc.create(tenant, cred) for _ in range(3)]
    clock[0] += 61

    async def call(coro: Any) -> Any:
        try:
            return await coro
        except Exception as exc:
            return exc

    calls = []
    for i in opened:
        calls += [svc.get(tenant, i.id), other.take(tenant, i.id), svc.submit(tenant, i.id, "1")]
    calls += [svc.sweep(), other.sweep(), svc.sweep()]
    results = await asyncio.gather(*(call(c) for c in calls))
    assert not [r for r in results if isinstance(r, Exception) and type(r).__name__ != "Expired"]
    events = await deliveries(gateway, "interaction.expired")
    assert sorted(e["data"]["interaction_id"] for e in events) == sorted(i.id for i in opened)


async def test_an_uncollected_code_is_destroyed(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """A submitted code nobody takes within the TTL is erased with its received-code twin."""
    _, tenant, cred = await setup_tenant(client, new_tenant, gateway)
    clock = [1_900_000_000.0]
    svc = service(gateway, clock)
    opened = await svc.create(tenant, cred)
    clock[0] += 50
    await svc.submit(tenant, opened.id, "424242")
    info = await svc.get(tenant, opened.id)
    assert info.status == "submitted" and info.expires_at == clock[0] + 60
    clock[0] += 59
    assert await svc.sweep() == 0  # the code waits a full TTL after its answer
    clock[0] += 2
    assert await svc.sweep() == 1
    async with gateway.db.read() as conn:
        row = (await conn.execute(select(Interaction).where(Interaction.id == opened.id))).one()
        twin = (
            await conn.execute(select(ReceivedCode).where(ReceivedCode.id == opened.id))
        ).first()
    assert row.status == "expired" and row.code is None and twin is None
    (event,) = await deliveries(gateway, "interaction.expired")
    assert event["data"]["answered"] is True


# -- secrets at rest and in webhooks ------------------------------------------------------


async def all_stored_bytes(gateway: Gateway) -> bytes:
    """Every byte the database holds: the SQLite files, or PostgreSQL's rows as text."""
    if gateway.db.is_sqlite:
        await asyncio.sleep(0)
        data_dir = gateway.settings.data_dir
        return b"".join(p.read_bytes() for p in sorted(data_dir.glob("otpgate.db*")))
    chunks: list[bytes] = []
    async with gateway.db.read() as conn:
        for table in ("interactions", "received_codes", "webhook_deliveries"):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
            for row in rows:
                for value in row:
                    if isinstance(value, bytes):
                        chunks.append(value)
                    elif value is not None:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


async def test_code_and_token_are_not_stored_in_clear(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """The submitted code is sealed, the token kept as a hash: neither is in the store."""
    tenant = await new_tenant()
    h = tenant["headers"]
    cred = (await (await client.post("/v1/credentials", json={"name": "c"}, headers=h)).json())[
        "id"
    ]
    created = await open_interaction(client, h, cred)
    token = created["submit_url"].rsplit("/", 1)[1]
    code = "Zq7K-unique-4242"
    assert (await client.post(path_of(created["submit_url"]), json={"code": code})).status == 204
    stored = await all_stored_bytes(gateway)
    assert b"Zq7K" not in stored
    assert token.encode() not in stored
    async with gateway.db.read() as conn:
        row = (await conn.execute(select(Interaction).where(Interaction.id == created["id"]))).one()
    assert row.code is not None and code.encode() not in row.code
    assert len(row.token_hash) == 32
    got = await client.get(f"/v1/interactions/{created['id']}/code", headers=h)
    assert (await got.json())["code"] == code
    async with gateway.db.read() as conn:
        row = (await conn.execute(select(Interaction).where(Interaction.id == created["id"]))).one()
    assert row.code is None


async def test_webhooks_carry_metadata_never_the_code(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """code_required and code_submitted are queued with metadata; no body holds the code."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway, name="Mail")
    created = await open_interaction(client, h, cred, prompt="The 6 digits from the app")
    code = "Xy98-never-in-a-webhook"
    assert (await client.post(path_of(created["submit_url"]), json={"code": code})).status == 204
    await client.get(f"/v1/interactions/{created['id']}/code", headers=h)
    events = await deliveries(gateway)
    assert [e["type"] for e in events] == [
        "interaction.code_required",
        "interaction.code_submitted",
    ]
    assert events[0]["data"] == {
        "interaction_id": created["id"],
        "kind": "code",
        "credential_id": cred,
        "credential_name": "Mail",
        "prompt": "The 6 digits from the app",
        "expires_at": created["expires_at"],
        "submit_url": None,  # the sender fills it in: the token is never stored in clear
    }
    assert set(events[1]["data"]) == {"interaction_id", "credential_id", "submitted_at"}
    async with gateway.db.read() as conn:
        bodies = (await conn.execute(select(WebhookDelivery.body))).scalars().all()
    assert bodies and not [b for b in bodies if "Xy98" in b]
    token = created["submit_url"].rsplit("/", 1)[1]
    assert not [b for b in bodies if token in b]
    sent = json.loads(
        await fill_submit_url(
            gateway.db,
            Vault(gateway.keyring),
            gateway.settings.public_url,
            next(b for b in bodies if "code_required" in b),
        )
    )
    assert sent["data"]["submit_url"] == created["submit_url"]


# -- the submit URL -----------------------------------------------------------------------

PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def assert_strict_headers(resp: Any) -> None:
    for name, value in PAGE_HEADERS.items():
        assert resp.headers[name] == value, name
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "style-src 'nonce-" in csp
    assert resp.content_type == "text/html"


async def test_page_shows_name_prompt_and_form_escaped(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """The page escapes the name and prompt, and has one phone-friendly code input."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway, name="Bank <b>&</b> Co")
    prompt = '<script>alert("x")</script> & type the code'
    created = await open_interaction(client, h, cred, prompt=prompt)
    resp = await client.get(path_of(created["submit_url"]))
    assert resp.status == 200
    assert_strict_headers(resp)
    page = await resp.text()
    assert "<script>" not in page and "<b>&" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; type the code" in page
    assert "Bank &lt;b&gt;&amp;&lt;/b&gt; Co" in page
    assert 'name="viewport"' in page
    assert 'inputmode="numeric"' in page and 'autocomplete="one-time-code"' in page
    assert page.count("<input") == 1 and page.count("<button") == 1
    assert "Answer within" in page
    nonce = resp.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in page


async def test_form_post_confirms_and_token_is_single_use(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """A form post shows a confirmation; afterwards the token takes nothing more (409 page)."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    page = path_of(created["submit_url"])
    resp = await client.post(page, data={"code": " 314159 "})
    assert resp.status == 200
    assert_strict_headers(resp)
    assert "Code sent" in await resp.text()
    again = await client.post(page, data={"code": "271828"})
    assert again.status == 409
    assert_strict_headers(again)
    assert "Already answered" in await again.text()
    assert (await client.get(page)).status == 409
    assert (await client.post(page, json={"code": "271828"})).status == 409
    got = await client.get(f"/v1/interactions/{created['id']}/code", headers=h)
    assert (await got.json())["code"] == "314159"


async def test_form_post_with_a_bad_code_shows_the_form_again(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """An empty or over-long form answer re-shows the form with the tries left, until 429."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    page = path_of(created["submit_url"])
    for left, bad in zip((4, 3, 2, 1), ("", "x" * 65, "   ", "a\tb"), strict=True):
        resp = await client.post(page, data={"code": bad})
        assert resp.status == 422
        text = await resp.text()
        assert f"({left} tr" in text and "<form" in text
    resp = await client.post(page, data="nothing=here", headers={"Content-Type": FORM})
    assert resp.status == 429 and "Too many tries" in await resp.text()


FORM = "application/x-www-form-urlencoded"


async def test_json_post_and_its_errors(client: Client, new_tenant: Any, gateway: Gateway) -> None:
    """A JSON post answers 204, and malformed ones the contract's JSON errors."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    page = path_of(created["submit_url"])
    assert (
        await client.post(page, data=b"{no", headers={"Content-Type": "application/json"})
    ).status == 400
    assert (await client.post(page, json={"code": 5})).status == 422
    assert (await client.post(page, json={"code": "1", "x": 1})).status == 422
    resp = await client.post(page, data=b"code=1", headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    assert (await resp.json())["error"]["code"] == "unsupported_media_type"
    resp = await client.post(page, json={"code": "1" * 5000})
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "too_large"
    resp = await client.post(page, data={"code": "1" * 5000})
    assert resp.status == 413 and resp.content_type == "text/html"
    resp = await client.post(page, json={"code": "555 666"})
    assert resp.status == 204
    shown = await (await client.get(f"/v1/interactions/{created['id']}", headers=h)).json()
    assert shown["status"] == "answered" and shown["attempts"] == 1


async def test_unknown_tokens_are_404(client: Client) -> None:
    """A made-up or malformed token is a 404: an HTML page for people, JSON for JSON."""
    for token in ("A" * 43, "short", "x" * 200, "%3Cscript%3E"):
        resp = await client.get(f"/submit/{token}")
        assert resp.status == 404, token
        assert resp.content_type == "text/html"
        assert "not valid" in await resp.text()
    resp = await client.post(f"/submit/{'A' * 43}", data={"code": "1"})
    assert resp.status == 404 and resp.content_type == "text/html"
    resp = await client.post(f"/submit/{'A' * 43}", json={"code": "1"})
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_cross_origin_posts_are_refused(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """A post whose Origin is not the public URL's origin is a 403 and stores nothing."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    page = path_of(created["submit_url"])
    public = gateway.settings.public_url.rstrip("/")
    scheme, _, host = public.partition("://")
    odd = (f"{scheme}://evil@{host}", f"{scheme}://{host}@evil", public + "/", public + "/x?y")
    for origin in ("https://evil.example", "null", "http://127.0.0.1:1", *odd):
        resp = await client.post(page, data={"code": "1"}, headers={"Origin": origin})
        assert resp.status == 403 and resp.content_type == "text/html", origin
        resp = await client.post(page, json={"code": "1"}, headers={"Origin": origin})
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "cross_origin"
    shown = await (await client.get(f"/v1/interactions/{created['id']}", headers=h)).json()
    assert shown["status"] == "pending" and shown["attempts"] == 0
    origin = gateway.settings.public_url.upper()  # origins compare case-insensitively
    resp = await client.post(page, data={"code": "1"}, headers={"Origin": origin})
    assert resp.status == 200


# -- once-only across the interaction's and the credential's code endpoints ----------------


async def test_credential_endpoint_first_then_interaction_endpoint(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """A code taken as the credential's newest (source user) is gone from the interaction."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    assert (await client.post(path_of(created["submit_url"]), json={"code": "777"})).status == 204
    resp = await client.get(f"/v1/credentials/{cred}/code", headers=h)
    assert resp.status == 200
    body = await resp.json()
    assert body["code"] == "777" and body["source"] == "user"
    assert (await client.get(f"/v1/credentials/{cred}/code", headers=h)).status == 204
    again = await client.get(f"/v1/interactions/{created['id']}/code", headers=h)
    assert again.status == 410
    shown = await (await client.get(f"/v1/interactions/{created['id']}", headers=h)).json()
    assert (shown["status"], shown["delivered"]) == ("answered", True)


async def test_interaction_endpoint_first_then_credential_endpoint(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """A code taken from the interaction is no longer the credential's code."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    assert (await client.post(path_of(created["submit_url"]), json={"code": "888"})).status == 204
    resp = await client.get(f"/v1/interactions/{created['id']}/code", headers=h)
    assert (await resp.json())["code"] == "888"
    assert (await client.get(f"/v1/credentials/{cred}/code", headers=h)).status == 204
    resp = await client.get(f"/v1/credentials/{cred}/code?source=user", headers=h)
    assert resp.status == 204


async def test_credential_long_poll_gets_a_users_code(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """An agent waiting on the credential's code is woken by a person's answer."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    waiting = asyncio.create_task(client.get(f"/v1/credentials/{cred}/code?wait=20", headers=h))
    await parked(gateway, cred)
    assert (await client.post(path_of(created["submit_url"]), data={"code": "5150"})).status == 200
    resp = await asyncio.wait_for(waiting, 5)
    body = await resp.json()
    assert body["code"] == "5150" and body["source"] == "user"
    resp = await client.get(f"/v1/interactions/{created['id']}/code", headers=h)
    assert resp.status == 410


async def test_concurrent_takers_on_both_endpoints_get_the_code_once(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """Many agents asking both endpoints at once: exactly one of them gets the code."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    for round_ in range(3):
        created = await open_interaction(client, h, cred)
        code = f"c{round_}-once"
        assert (
            await client.post(path_of(created["submit_url"]), json={"code": code})
        ).status == 204
        urls = [f"/v1/interactions/{created['id']}/code", f"/v1/credentials/{cred}/code"] * 8

        async def ask(url: str) -> tuple[int, str | None]:
            resp = await client.get(url, headers=h)
            if resp.status == 200:
                return 200, (await resp.json())["code"]
            return resp.status, None

        results = await asyncio.gather(*(ask(u) for u in urls))
        got = [c for status, c in results if status == 200]
        assert got == [code], results
        assert {s for s, _ in results} <= {200, 204, 410}


async def test_a_newer_mail_code_does_not_swallow_an_answer(
    client: Client, new_tenant: Any, gateway: Gateway
) -> None:
    """A credential's newer code does not swallow an answer its interaction still waits for."""
    h, tenant, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    assert (await client.post(path_of(created["submit_url"]), json={"code": "1111"})).status == 204
    async with gateway.db.write() as conn:  # a mail code arriving after the answer
        vault = Vault(gateway.keyring)
        wrapped = (
            await conn.execute(
                text("SELECT data_key FROM credentials WHERE id = :id"), {"id": cred}
            )
        ).scalar_one()
        dek = vault.unwrap_data_key(wrapped, tenant_id=tenant, credential_id=cred)
        rid = ids.new_id(ids.RECEIVED_CODE)
        sealed = vault.seal_field(
            dek, b"2222", tenant_id=tenant, credential_id=cred, field=f"code:{rid}"
        )
        now = time.time() + 1
        await conn.execute(
            insert(ReceivedCode).values(
                id=rid, tenant_id=tenant, credential_id=cred, source="email", code=sealed,
                sender="x@example.com", received_at=now, expires_at=now + 300,
            )
        )  # fmt: skip
    assert (await (await client.get(f"/v1/credentials/{cred}/code", headers=h)).json())[
        "code"
    ] == "2222"
    assert (await client.get(f"/v1/credentials/{cred}/code", headers=h)).status == 204
    resp = await client.get(f"/v1/interactions/{created['id']}/code", headers=h)
    assert (await resp.json())["code"] == "1111"


@pytest.mark.parametrize("wait", ["-1", "301", "soon"])
async def test_bad_wait_values(
    client: Client, new_tenant: Any, gateway: Gateway, wait: str
) -> None:
    """wait outside 0..300 is refused as for the credential's code endpoint."""
    h, _, cred = await setup_tenant(client, new_tenant, gateway)
    created = await open_interaction(client, h, cred)
    resp = await client.get(f"/v1/interactions/{created['id']}/code?wait={wait}", headers=h)
    assert resp.status in (400, 422)
