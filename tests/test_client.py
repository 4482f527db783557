"""The SDK (``gateway.client``) against a real gateway on a loopback port.

The gateway runs on SQLite with its background workers, its public URL set
to its own address (so ``submit_url`` and Twilio signatures point at it).
Codes arrive by the real routes: Twilio-signed texts to ``/sms/twilio``, a
person's answer to an interaction, and TOTP checked against ``pyotp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pyotp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook as StandardWebhook
from twilio.request_validator import RequestValidator

from gateway.client import (
    ApiError,
    AsyncClient,
    BadRequest,
    Client,
    CodeTimeout,
    Conflict,
    ConnectionFailed,
    Expired,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    Retry,
    Secret,
    ServerError,
    TooLarge,
    Unauthorized,
    WebhookVerificationError,
    verify_webhook,
)
from gateway.client.clock import ServerClock

from .helpers import (
    ADMIN_KEY,
    Receiver,
    Served,
    eventually,
    listening,
    parked,
    port_of,
    reserved,
    served_on_loopback,
)

ROOT = Path(__file__).resolve().parents[1]
TWILIO_TOKEN = "sdk-test-twilio-token-5f0e1d2c"
TOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


class ReferenceTotp(pyotp.TOTP):
    """pyotp's TOTP, taking the 80-bit secrets real services issue (it wants 112 bits)."""

    min_secret_length_bits = 80


FAST = Retry(attempts=4, backoff=0.02, max_backoff=0.1)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A real gateway on a loopback port, with its background workers running."""
    async with served_on_loopback(
        tmp_path,
        background=True,
        OTPGATE_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        OTPGATE_ALLOW_PRIVATE_TARGETS="1",
        OTPGATE_INTERACTION_TTL="3",
    ) as s:
        yield s


@pytest.fixture
async def gate(served: Served) -> AsyncIterator[AsyncClient]:
    """An AsyncClient with a new tenant's key."""
    async with AsyncClient(served.url, ADMIN_KEY) as admin:
        tenant = await admin.create_tenant("acme")
    async with AsyncClient(served.url, tenant.api_key, retry=FAST) as client:
        yield client


_sids = iter(range(10**6))


async def text(url: str, to: str, body: str) -> None:
    """A text to ``to``, posted and signed exactly as Twilio's webhook does."""
    sid = f"SM{next(_sids):032x}"
    params = {"MessageSid": sid, "From": "+15005550006", "To": to, "Body": body}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url + "/sms/twilio", params)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/sms/twilio",
            data=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()


async def sampled_clock(gate: AsyncClient, seconds: float = 1.1) -> None:
    """Ask the gateway often for a while, so its clock is known to a few milliseconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await gate.health()
        await asyncio.sleep(0.02)  # the behaviour: samples spread over time


# -- errors -------------------------------------------------------------------------


async def test_each_error_status_raises_its_own_exception(
    served: Served, gate: AsyncClient
) -> None:
    """400, 401, 403, 404, 409, 410, 413, 422 and 429 each raise their class, code and message."""
    cred = await gate.create_credential("bank")
    with pytest.raises(BadRequest) as bad:
        await gate._http.request(
            "GET",
            "/v1/credentials/{id}/code",
            path={"id": cred.id},
            params={"wait": "soon"},
            repeatable=True,
        )
    assert (bad.value.status, bad.value.code) == (400, "bad_input")
    async with AsyncClient(served.url, "otpg_not-a-key") as stranger:
        with pytest.raises(Unauthorized) as unauth:
            await stranger.credentials()
    assert unauth.value.code == "unauthenticated"
    async with AsyncClient(served.url, ADMIN_KEY) as admin:
        with pytest.raises(Forbidden):
            await admin.credentials()
    with pytest.raises(NotFound) as missing:
        await gate.credential("cred_0000000000000000000000000000")
    assert missing.value.code == "not_found" and missing.value.message
    with pytest.raises(TooLarge) as large:
        await gate.create_credential("x" * 70_000)  # the API reads at most 64 KiB
    assert large.value.code == "too_large"
    with pytest.raises(Invalid) as invalid:
        await gate.set_authenticator(cred, secret="JBSWY3DP", kind="totp")  # 40 bits: too short
    assert invalid.value.status == 422
    answered = await gate.create_interaction(cred)
    await gate.submit_code(answered, "482915")
    with pytest.raises(Conflict) as conflict:
        await gate.submit_code(answered, "482915")
    assert conflict.value.code == "already_answered"
    flooded = await gate.create_interaction(cred)
    for _ in range(5):
        with pytest.raises(Invalid):
            await gate.submit_code(flooded, "\x00")
    with pytest.raises(RateLimited) as limited:
        await gate.submit_code(flooded, "482915")
    assert limited.value.code == "too_many_attempts"
    late = await gate.create_interaction(cred)
    await asyncio.sleep(3.2)  # OTPGATE_INTERACTION_TTL=3
    with pytest.raises(Expired):
        await gate.submit_code(late, "482915")
    for exc in (bad.value, unauth.value, missing.value, conflict.value, limited.value):
        assert isinstance(exc, ApiError)
        assert str(exc).startswith(f"{exc.status} {exc.code}: ")


async def test_no_code_yet_is_none_and_a_pending_code_times_out(gate: AsyncClient) -> None:
    """``code()`` answers None when nothing came; ``await pending`` raises CodeTimeout."""
    cred = await gate.create_credential("bank")
    started = time.monotonic()
    assert await gate.code(cred, wait=0.3) is None
    assert time.monotonic() - started >= 0.3
    async with gate.expect_code(cred) as pending:
        pass
    with pytest.raises(CodeTimeout):
        await pending.code(wait=0.2)
    with pytest.raises(TimeoutError):  # CodeTimeout is a TimeoutError too
        await pending.code(wait=0)


# -- retries ------------------------------------------------------------------------


class Flaky:
    """A TCP front for the gateway that mistreats its first ``drop`` connections.

    ``after_request``: the connection is closed once the request's headers
    came (the request may have been processed, as far as the client knows);
    otherwise right after it is accepted.
    """

    def __init__(
        self, target: str, *, drop: int, after_request: bool, sock: socket.socket | None = None
    ) -> None:
        self.target_port = int(target.rsplit(":", 1)[1])
        self.drop = drop
        self.after_request = after_request
        self.connections = 0
        self.sock = sock or listening()
        self.port = port_of(self.sock)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> Flaky:
        self._server = await asyncio.start_server(self._handle, sock=self.sock)
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections <= self.drop:
            if self.after_request:
                await reader.readuntil(b"\r\n\r\n")
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()


async def _tenant_key(served: Served) -> Secret:
    async with AsyncClient(served.url, ADMIN_KEY) as admin:
        return (await admin.create_tenant("acme")).api_key


async def test_a_read_is_repeated_after_connections_drop(served: Served) -> None:
    """A GET whose connections break after it was sent is repeated until it gets its answer."""
    key = await _tenant_key(served)
    flaky = await Flaky(served.url, drop=2, after_request=True).start()
    try:
        async with AsyncClient(flaky.url, key, retry=FAST) as gate:
            assert await gate.credentials() == []
        assert flaky.connections == 3
    finally:
        await flaky.stop()


async def test_a_post_that_may_have_arrived_is_not_repeated(served: Served) -> None:
    """A POST whose connection broke after sending raises ConnectionFailed(maybe_processed)."""
    key = await _tenant_key(served)
    flaky = await Flaky(served.url, drop=1, after_request=True).start()
    try:
        async with AsyncClient(flaky.url, key, retry=FAST) as gate:
            with pytest.raises(ConnectionFailed) as failed:
                await gate.create_credential("bank")
        assert failed.value.maybe_processed is True
        assert "not repeated" in str(failed.value)
        assert flaky.connections == 1
    finally:
        await flaky.stop()


async def test_a_post_that_never_left_is_repeated(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """A POST that met a refused connection is repeated: the gateway never saw it."""
    key = await _tenant_key(served)
    sock = reserved()  # connections are refused until the proxy starts on it
    retry = Retry(attempts=10, backoff=0.05, max_backoff=0.1)
    async with AsyncClient(f"http://127.0.0.1:{port_of(sock)}", key, retry=retry) as gate:
        creating = asyncio.create_task(gate.create_credential("bank"))
        await eventually(lambda: _retried(caplog, 3))  # a few refused connections
        assert not creating.done()
        flaky = await Flaky(served.url, drop=0, after_request=False, sock=sock).start()
        try:
            cred = await asyncio.wait_for(creating, 10)
        finally:
            await flaky.stop()
    async with AsyncClient(served.url, key) as direct:
        assert [c.id for c in await direct.credentials()] == [cred.id]


async def _retried(caplog: pytest.LogCaptureFixture, times: int) -> bool:
    """Whether the SDK has said *times* times that it is trying again."""
    return sum("trying again" in r.getMessage() for r in caplog.records) >= times


async def test_an_unreachable_gateway_fails_after_the_tries(served: Served) -> None:
    """With nothing listening, the SDK gives up after ``attempts`` tries: it never arrived."""
    with reserved() as closed:
        url = f"http://127.0.0.1:{port_of(closed)}"
        async with AsyncClient(url, "k", retry=FAST) as gate:
            with pytest.raises(ConnectionFailed) as failed:
                await gate.credentials()
    assert failed.value.maybe_processed is False
    assert "after 4 tries" in str(failed.value)


async def test_error_answers_are_never_repeated() -> None:
    """A 503 or a 404 is raised at once: the server got the request, so it is not repeated."""
    hits: list[str] = []

    async def failing(request: web.Request) -> web.Response:
        hits.append(request.path)
        status = 503 if "unwell" in request.path else 404
        body = {"error": {"code": "unavailable" if status == 503 else "not_found", "message": "x"}}
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", failing)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = listening()
    port = port_of(sock)
    await web.SockSite(runner, sock).start()
    try:
        async with AsyncClient(f"http://127.0.0.1:{port}", "k", retry=FAST) as gate:
            with pytest.raises(ServerError) as unwell:
                await gate.credential("unwell")
            with pytest.raises(NotFound):
                await gate.code("cred_missing", wait=0)
    finally:
        await runner.cleanup()
    assert unwell.value.status == 503 and unwell.value.code == "unavailable"
    assert len(hits) == 2


# -- correlation and rejection ---------------------------------------------------------


async def test_expect_code_skips_a_code_that_came_before_the_mark(
    served: Served, gate: AsyncClient
) -> None:
    """A code received before ``expect_code`` is never handed to it; the next one is."""
    cred = await gate.set_phone(await gate.create_credential("bank"), "+14155550101")
    await text(served.url, "+14155550101", "Your Bank code is 111111")  # from an earlier login
    await sampled_clock(gate)
    assert (gate.clock.uncertainty or 1.0) < 0.25
    async with gate.expect_code(cred, margin=0) as pending:
        assert pending.since <= datetime.now(UTC)
        # Nothing newer yet: the stale code is not handed out.
        with pytest.raises(CodeTimeout):
            await pending.code(wait=0.3)
        await text(served.url, "+14155550101", "Your Bank code is 222222")
    code = await pending
    assert (code.value, code.source) == ("222222", "sms")
    assert await gate.code(cred) is None  # the stale one went with it


async def test_reject_waits_for_a_code_received_after_the_refused_one(
    served: Served, gate: AsyncClient
) -> None:
    """After ``reject()`` the next code is a newer text, even one that came before the reject."""
    cred = await gate.set_phone(await gate.create_credential("bank"), "+14155550102")
    async with gate.expect_code(cred) as pending:
        await text(served.url, "+14155550102", "Your Bank code is 333333")
    assert (await pending.code(wait=5)).value == "333333"
    # The site sends a fresh code as it refuses the first; it arrives before reject().
    await text(served.url, "+14155550102", "Your Bank code is 444444")
    await pending.reject()
    assert (await pending.code(wait=5)).value == "444444"
    await pending.reject()
    with pytest.raises(CodeTimeout):
        await pending.code(wait=0.2)
    await text(served.url, "+14155550102", "Your Bank code is 555555")
    assert (await pending.code(wait=5)).value == "555555"
    assert pending.handed_out == 3


async def test_a_rejected_totp_code_is_followed_by_the_next_step(gate: AsyncClient) -> None:
    """After a TOTP code is refused, the next one comes from a later time step."""
    cred = await gate.create_credential("bank")
    await gate.set_authenticator(cred, secret=TOTP_SECRET, kind="totp", period=3)
    reference = pyotp.TOTP(TOTP_SECRET, interval=3)
    async with gate.expect_code(cred) as pending:
        pass
    first = await pending.code(wait=5)
    assert first.source == "totp" and first.expires_at is not None
    assert first.value == reference.at(first.expires_at.timestamp() - 1)
    await pending.reject()
    second = await pending.code(wait=10)
    assert second.expires_at is not None and second.expires_at > first.expires_at
    assert second.value == reference.at(second.expires_at.timestamp() - 1)
    assert datetime.now(UTC) >= first.expires_at.replace(microsecond=0)


async def test_min_validity_is_capped_below_the_period(gate: AsyncClient) -> None:
    """``pending.code(min_validity=...)`` never asks for more than the period allows."""
    cred = await gate.create_credential("bank")
    await gate.set_authenticator(cred, secret=TOTP_SECRET, kind="totp", period=3)
    async with gate.expect_code(cred) as pending:
        pass
    code = await pending.code(wait=5, min_validity=30)
    assert code.expires_at is not None
    with pytest.raises(Invalid):  # the raw call is refused by the gateway
        await gate.code(cred, min_validity=30)


# -- the server's clock -----------------------------------------------------------------


def test_server_clock_intersects_date_headers_and_restarts_after_a_step() -> None:
    """Date headers bound the gateway's clock; a contradicting one restarts the bounds."""
    now = [100.0]
    clock = ServerClock(monotonic=lambda: now[0], wall=lambda: 0.0)
    assert clock.now() == -2.0  # nothing observed: the wall clock less a margin
    # Gateway time = monotonic + 1,000,000.3; Date is floored to the second.
    clock.observe("Mon, 12 Jan 1970 13:46:40 GMT", sent=99.9, received=100.0)  # 1000000
    assert clock.uncertainty == pytest.approx(1.1)
    assert clock.now() == pytest.approx(1_000_000.0)  # never later than the truth
    now[0] = 100.7  # gateway 1000001.0: the Date just turned
    clock.observe("Mon, 12 Jan 1970 13:46:41 GMT", sent=100.65, received=100.7)
    assert clock.now() == pytest.approx(1_000_001.0, abs=0.001)
    assert clock.uncertainty == pytest.approx(0.8)
    # A clock stepped back by an hour: the old bounds are dropped.
    clock.observe("Mon, 12 Jan 1970 12:46:41 GMT", sent=100.75, received=100.8)
    assert clock.now() == pytest.approx(1_000_001.0 - 3600, abs=1.0)
    clock.observe(None, sent=0, received=0)
    clock.observe("not a date", sent=0, received=0)


# -- secrets ---------------------------------------------------------------------------


async def test_no_secret_in_any_repr_or_log_line(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """API keys, passwords, TOTP secrets, codes, webhook secrets and link tokens stay hidden."""
    caplog.set_level(logging.DEBUG)
    password = "canary-Pa55word-0xq"
    async with AsyncClient(served.url, ADMIN_KEY) as admin:
        tenant = await admin.create_tenant("acme")
        shown = [repr(admin), repr(tenant), str(tenant.api_key)]
    key = tenant.api_key.reveal()
    async with AsyncClient(served.url, key) as gate:
        cred = await gate.create_credential("bank", username="bot", password=password)
        await gate.set_authenticator(cred, secret=TOTP_SECRET, kind="totp")
        totp = await gate.code(cred)
        assert totp is not None
        secret = await gate.password(cred)
        assert secret.reveal() == password
        hook = await gate.create_webhook("http://127.0.0.1:9/hook", ["code.received"])
        person = await gate.create_interaction(cred)
        assert person.submit_url is not None
        await gate.submit_code(person, "552290")
        answer = await gate.interaction_code(person, wait=1)
        assert answer is not None and answer.value == "552290"
        with pytest.raises(Conflict) as refused:
            await gate.submit_code(person, "552290")
        async with gate.expect_code(cred) as pending:
            pass
        shown += [repr(gate), repr(cred), repr(totp), str(totp), repr(secret), str(secret)]
        shown += [repr(hook), repr(person), repr(answer), repr(pending), repr(refused.value)]
        shown += [str(refused.value), f"{totp}", f"{secret}"]
    with Client(served.url, key) as blocking:
        shown.append(repr(blocking))
    assert hook.secret is not None
    token = person.submit_url.rsplit("/", 1)[1]
    needles = [
        key,
        ADMIN_KEY,
        password,
        TOTP_SECRET,
        totp.value,
        "552290",
        hook.secret.reveal(),
        token,
    ]
    text_seen = "\n".join(shown) + "\n" + caplog.text
    assert "GET /v1/credentials/{id}/code -> 200" in caplog.text  # the log is there
    for needle in needles:
        assert needle not in text_seen, needle
    assert secret == Secret(password) and secret != Secret("other")


# -- the blocking client ----------------------------------------------------------------


async def test_the_blocking_client_does_the_same_in_its_own_thread(served: Served) -> None:
    """``Client`` creates, waits for a text with ``expect_code`` and skips a stale one."""
    key = await _tenant_key(served)
    loop = asyncio.get_running_loop()

    def send(body: str) -> None:
        asyncio.run_coroutine_threadsafe(text(served.url, "+14155550103", body), loop).result(5)

    def scenario() -> tuple[str, str, str, bool]:
        with Client(served.url, key, retry=FAST) as gate:
            cred = gate.create_credential("bank", username="bot", password="pw-1")
            gate.set_phone(cred, "+14155550103")
            send("Your Bank code is 515151")  # stale
            time.sleep(1.1)  # the behaviour: a text older than the expectation is stale
            for _ in range(30):
                gate.health()  # sample the gateway's clock
                time.sleep(0.02)
            with gate.expect_code(cred, margin=0) as pending:
                send("Your Bank code is 626262")
            code = pending.code(wait=5)
            pending.reject()
            totp_cred = gate.create_credential("totp")
            gate.set_authenticator(totp_cred, secret=TOTP_SECRET, kind="totp")
            totp = gate.code(totp_cred)
            assert totp is not None
            return code.value, totp.value, gate.password(cred).reveal(), gate.health()

    got, totp, password, healthy = await asyncio.to_thread(scenario)
    assert got == "626262"
    assert totp in {pyotp.TOTP(TOTP_SECRET).at(time.time() - d) for d in (0, 30)}
    assert (password, healthy) == ("pw-1", True)


async def test_interactions_from_the_sdk(served: Served, gate: AsyncClient) -> None:
    """An interaction is opened, answered at its link, handed out once, then 410."""
    cred = await gate.create_credential("bank")
    asked = await gate.create_interaction(cred, prompt="the code we texted you")
    assert asked.status == "pending" and asked.submit_url is not None
    assert asked.submit_url.startswith(served.url + "/submit/")
    waiting = asyncio.create_task(gate.interaction_code(asked, wait=10))
    await parked(served.gateway, asked.id)
    async with (
        aiohttp.ClientSession() as session,
        session.post(asked.submit_url, json={"code": "a7-x9"}) as resp,
    ):
        assert resp.status == 204
    code = await waiting
    assert code is not None and (code.value, code.source) == ("a7-x9", "user")
    with pytest.raises(Expired) as again:
        await gate.interaction_code(asked)
    assert again.value.code == "already_delivered"
    shown = await gate.interaction(asked)
    assert (shown.status, shown.delivered) == ("answered", True)


# -- webhooks ----------------------------------------------------------------------------


async def test_verify_webhook_accepts_the_gateways_deliveries_only(
    served: Served, gate: AsyncClient
) -> None:
    """A real delivery verifies; a changed body, another secret or an old timestamp do not."""
    receiver = await Receiver().start()
    try:
        hook = await gate.create_webhook(receiver.url, ["interaction.code_required"])
        assert hook.secret is not None and hook.secret.reveal().startswith("whsec_")
        cred = await gate.create_credential("bank")
        await gate.create_interaction(cred)

        async def delivered() -> bool:
            return bool(receiver.ok())

        await eventually(delivered, within=20)
    finally:
        await receiver.stop()
    seen = receiver.ok()[0]
    event = verify_webhook(seen.body, seen.headers, hook.secret)
    assert event.type == "interaction.code_required"
    assert event.id == seen.headers["webhook-id"]
    assert event.data["credential_id"] == cred.id
    assert event.data["submit_url"].startswith(served.url + "/submit/")
    assert event.data["submit_url"] not in repr(event)
    other = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
    # During a rotation both secrets are tried.
    assert verify_webhook(seen.body, seen.headers, [other, hook.secret]).id == event.id
    with pytest.raises(WebhookVerificationError):
        verify_webhook(seen.body, seen.headers, other)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(
            seen.body.replace(b"code_required", b"code_requirez"), seen.headers, hook.secret
        )
    with pytest.raises(WebhookVerificationError):
        verify_webhook(seen.body, {**seen.headers, "webhook-signature": "v1"}, hook.secret)
    # Signed by the specification's own library, but ten minutes ago.
    signer = StandardWebhook(hook.secret.reveal())
    old = datetime.fromtimestamp(time.time() - 600, UTC)
    body = json.dumps({"type": "code.received", "timestamp": old.isoformat(), "data": {}})
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": signer.sign("msg_1", old, body),
    }
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(body, headers, hook.secret)
    now = datetime.now(UTC)
    headers |= {
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign("msg_1", now, body),
    }
    assert verify_webhook(body.encode(), headers, hook.secret).type == "code.received"


# -- README -------------------------------------------------------------------------------


def readme_snippet() -> str:
    """The Python example of README's SDK section, as written there."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### The agent's side: the Python SDK", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.+?)```", section, flags=re.S)[0]


async def test_the_readme_example_runs_as_pasted(served: Served) -> None:
    """README's SDK example runs unchanged (but for the address) and never prints the code."""
    snippet = readme_snippet()
    assert len([line for line in snippet.splitlines() if line.strip()]) <= 12
    assert "http://127.0.0.1:8080" in snippet
    key = await _tenant_key(served)
    script = snippet.replace("http://127.0.0.1:8080", served.url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        env={"OTPGATE_API_KEY": key.reveal(), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    printed = out.decode()
    assert printed.startswith("Code(source='totp', value=<6 characters>")
    secret = "JBSWY3DPEHPK3PXP"
    expected = {ReferenceTotp(secret).at(time.time() + d) for d in (-30, 0, 30)}
    assert not any(code in printed for code in expected)
