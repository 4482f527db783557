"""The email proxy end to end: a real SMTP listener on loopback, stdlib smtplib, the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp.test_utils import TestClient

from gateway.settings import Settings
from gateway.store.codes import count_waiting
from smtp.server import MAX_LINE, SessionGate, tls_context

from .helpers import SmtpRig, eventually, make_settings, otp_mail, parked, smtp_rig

Client = TestClient[Any, Any]


@pytest.fixture
async def rig(settings: Settings, aiohttp_client: Callable[..., Any]) -> AsyncIterator[SmtpRig]:
    async with smtp_rig(settings, aiohttp_client) as r:
        yield r


async def test_unknown_and_foreign_recipients_are_refused_at_rcpt(rig: SmtpRig) -> None:
    """An unknown inbox is 550 5.1.1 and another domain 550 5.7.1 (never a relay)."""
    cred = await rig.credential()
    for to, status in (
        ("nobody@inbox.localhost", b"5.1.1"),
        ("victim@example.com", b"5.7.1"),
        (cred["inbox"].replace("inbox.localhost", "inbox.localhost.evil.test"), b"5.7.1"),
    ):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            await rig.send(to, otp_mail("123456"))
        code, text = info.value.recipients[to]
        assert code == 550 and text.startswith(status), (to, text)
    assert await rig.code(cred) == (204, None)


async def test_oversized_mail_is_refused(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    """A mail over the size limit is refused with 552 and stores nothing."""
    settings = make_settings(tmp_path, database_url, OTPGATE_SMTP_MAX_SIZE="4096")
    async with smtp_rig(settings, aiohttp_client) as rig:
        cred = await rig.credential()
        msg = otp_mail("123456")
        msg.add_attachment(b"x" * 8000, maintype="application", subtype="octet-stream")
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as info:
            await rig.send(cred["inbox"], msg)
        assert info.value.smtp_code == 552
        # Without the SIZE hint the DATA itself is cut off, also with 552.
        raw = msg.as_bytes(policy=SMTP_POLICY)

        def no_size_hint() -> Any:
            with smtplib.SMTP("127.0.0.1", rig.port, timeout=10) as smtp:
                smtp.ehlo()
                smtp.mail("a@b.example")
                smtp.rcpt(cred["inbox"])
                return smtp.data(raw)

        code, text = await asyncio.to_thread(no_size_hint)
        assert code == 552, text
        assert await rig.code(cred) == (204, None)


async def test_html_only_and_plus_addressed_mail_deliver_the_code(rig: SmtpRig) -> None:
    """An HTML-only mail sent to local+tag@domain hands its code to the agent."""
    cred = await rig.credential()
    local, domain = cred["inbox"].split("@")
    await rig.send(f"{local}+github@{domain}", otp_mail("482913", html_only=True))
    status, body = await rig.code(cred)
    assert status == 200
    assert body["code"] == "482913" and body["source"] == "email"
    assert body["sender"] == "no-reply@service.example"
    assert body["received_at"].endswith("Z")


async def test_long_poll_is_woken_by_a_mail_and_the_code_is_handed_out_once(rig: SmtpRig) -> None:
    """A waiting agent gets the code as soon as the mail is accepted; a second fetch is 204."""
    cred = await rig.credential()
    waiter = asyncio.create_task(rig.code(cred, "?wait=20"))
    await parked(rig.gateway, cred["id"])
    assert not waiter.done()
    started = time.monotonic()
    await rig.send(cred["inbox"], otp_mail("739201"))
    status, body = await asyncio.wait_for(waiter, 5)
    assert (status, body["code"]) == (200, "739201")
    assert time.monotonic() - started < 2
    assert await rig.code(cred) == (204, None)
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'otpgate_messages_total{channel="email",outcome="code"} 1' in metrics
    assert 'otpgate_codes_delivered_total{source="email"} 1' in metrics
    assert "otpgate_code_wait_seconds_count 1" in metrics
    assert 'otpgate_codes_unsolicited_total{channel="email"} 0' in metrics  # it was awaited
    assert "otpgate_code_waiters 0" in metrics


async def test_metrics_count_unsolicited_codes_and_waiting_agents(rig: SmtpRig) -> None:
    """A code nobody waits for counts as unsolicited; a parked agent shows as a waiter."""
    cred, other = await rig.credential(), await rig.credential("other")
    await rig.send(cred["inbox"], otp_mail("739201"))
    waiter = asyncio.create_task(rig.code(other, "?wait=20"))
    await parked(rig.gateway, other["id"])
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'otpgate_codes_unsolicited_total{channel="email"} 1' in metrics
    assert "otpgate_code_waiters 1" in metrics
    assert "otpgate_webhook_deliveries_pending 0" in metrics
    await rig.send(other["inbox"], otp_mail("101202"))
    assert (await asyncio.wait_for(waiter, 5))[1]["code"] == "101202"


async def test_newest_code_wins_and_older_ones_go_with_it(rig: SmtpRig) -> None:
    """Of several waiting codes the newest is handed out and the older ones are destroyed."""
    cred = await rig.credential()
    for code in ("111111", "222222", "333333"):
        await rig.send(cred["inbox"], otp_mail(code))
    assert (await rig.code(cred))[1]["code"] == "333333"
    assert await rig.code(cred) == (204, None)


async def test_since_skips_older_codes(rig: SmtpRig) -> None:
    """A code that arrived before `since` is not handed out."""
    cred = await rig.credential()
    await rig.send(cred["inbox"], otp_mail("111111"))
    await asyncio.sleep(0.05)  # the behaviour: the first code is older than `since`
    since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    assert (await rig.code(cred, f"?since={since}"))[0] == 204
    await asyncio.sleep(0.05)  # and the second newer
    await rig.send(cred["inbox"], otp_mail("222222"))
    assert (await rig.code(cred, f"?since={since}"))[1]["code"] == "222222"


async def test_concurrent_waiters_never_share_a_code(rig: SmtpRig) -> None:
    """20 agents wait on one credential while 10 codes arrive: no code is handed out twice."""
    cred = await rig.credential()
    waiters = [asyncio.create_task(rig.code(cred, "?wait=6")) for _ in range(20)]
    await parked(rig.gateway, cred["id"], 20)
    sent = [f"{500000 + i * 7919:06d}" for i in range(10)]
    for code in sent:
        await rig.send(cred["inbox"], otp_mail(code))
        await asyncio.sleep(0.05)
    results = await asyncio.gather(*waiters)
    got = [body["code"] for status, body in results if status == 200]
    assert len(got) == len(set(got)), "a code was handed out twice"
    assert set(got) <= set(sent)
    assert len(got) >= 5, f"only {len(got)} of 10 codes reached a waiter"
    assert all(status in (200, 204) for status, _ in results)


async def test_a_waiter_that_gives_up_takes_nothing(rig: SmtpRig) -> None:
    """An agent that disconnects while waiting leaves the next code for the next agent."""
    cred = await rig.credential()
    waiter = asyncio.create_task(rig.code(cred, "?wait=30"))
    await parked(rig.gateway, cred["id"])
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await parked(rig.gateway, cred["id"], 0)  # the gateway saw the agent go
    await rig.send(cred["inbox"], otp_mail("864209"))
    assert (await rig.code(cred))[1]["code"] == "864209"


async def test_expired_codes_are_gone(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    """A code older than OTPGATE_CODE_TTL is never handed out and the sweep destroys it."""
    settings = make_settings(tmp_path, database_url, OTPGATE_CODE_TTL="1")
    async with smtp_rig(settings, aiohttp_client) as rig:
        cred = await rig.credential()
        await rig.send(cred["inbox"], otp_mail("123987"))
        await asyncio.sleep(1.2)  # the behaviour: OTPGATE_CODE_TTL=1 runs out
        assert await rig.code(cred) == (204, None)
        await rig.send(cred["inbox"], otp_mail("456321"))
        await asyncio.sleep(1.2)
        # Both are past their time: the sweep destroys them, nothing is left.
        assert await rig.gateway.services.codes.sweep() == 2
        async with rig.gateway.db.read() as conn:
            assert await count_waiting(conn) == 0
        assert await rig.code(cred) == (204, None)


async def test_allowed_senders_and_own_pattern(rig: SmtpRig) -> None:
    """Mail from a sender not allowed is rejected; a credential's own pattern finds its code."""
    guarded = await rig.credential("guarded", allowed_senders=["service.example"])
    await rig.send(guarded["inbox"], otp_mail("111222", sender="attacker@evil.example"))
    assert await rig.code(guarded) == (204, None)
    await rig.send(guarded["inbox"], otp_mail("333444", sender="auth@mail.service.example"))
    assert (await rig.code(guarded))[1]["code"] == "333444"

    custom = await rig.credential("custom", pattern=r"ref ([A-Z]{3}-\d{3})")
    msg = otp_mail("999999")
    msg.replace_header("Subject", "Login ref QXZ-123")
    await rig.send(custom["inbox"], msg)
    assert (await rig.code(custom))[1]["code"] == "QXZ-123"
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'otpgate_messages_total{channel="email",outcome="rejected"} 1' in metrics


async def test_bad_extraction_settings_are_422(rig: SmtpRig) -> None:
    """A hostile or broken pattern and a bad sender domain are refused with 422."""
    cred = await rig.credential()
    url = f"/v1/credentials/{cred['id']}/extraction"
    for body in (
        {"pattern": "(a+)+$"},
        {"pattern": "(unclosed"},
        {"pattern": "x" * 201},
        {"allowed_senders": ["not a domain"]},
        {"allowed_senders": []},
        {"allowed_senders": "example.com"},
    ):
        resp = await rig.client.put(url, json=body, headers=rig.headers)
        assert resp.status == 422, body
    got = await (await rig.client.get(url, headers=rig.headers)).json()
    assert got == {"pattern": None, "allowed_senders": None}


async def test_one_mail_to_several_inboxes(rig: SmtpRig) -> None:
    """A mail to two credentials' inboxes gives each its own copy of the code."""
    a, b = await rig.credential("a"), await rig.credential("b")
    await rig.send([a["inbox"], b["inbox"]], otp_mail("246810"))
    assert (await rig.code(a))[1]["code"] == "246810"
    assert (await rig.code(b))[1]["code"] == "246810"


async def test_recipient_cap(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    """Recipients past the per-mail cap are answered 452 while the first ones are kept."""
    settings = make_settings(tmp_path, database_url, OTPGATE_SMTP_MAX_RECIPIENTS="2")
    async with smtp_rig(settings, aiohttp_client) as rig:
        creds = [await rig.credential(f"c{i}") for i in range(3)]
        refused = await rig.send([c["inbox"] for c in creds], otp_mail("135791"))
        assert refused == {creds[2]["inbox"]: (452, b"4.5.3 Too many recipients")}
        assert (await rig.code(creds[0]))[1]["code"] == "135791"


async def test_session_cap(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    """Sessions over the concurrent limit are turned away with 421."""
    settings = make_settings(tmp_path, database_url, OTPGATE_SMTP_MAX_SESSIONS="2")
    async with smtp_rig(settings, aiohttp_client) as rig:
        held = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
            assert (await reader.readline()).startswith(b"220 ")
            held.append(writer)
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
        assert (await reader.readline()).startswith(b"421 4.3.2")
        writer.close()
        for w in held:
            w.close()

        async def closed() -> bool:
            return rig.gate.active == 0

        await eventually(closed)
        assert rig.gate.active == 0 and rig.gate.refused == 1


async def test_junk_never_breaks_a_session(rig: SmtpRig) -> None:
    """Malformed MIME, binary junk and an empty body are accepted without a code or a crash."""
    cred = await rig.credential()
    for raw in (
        b"",
        b"\x00\xff\xfe binary junk \x80\x81",
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain;"
        b" charset=no-such-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%%\r\n",
        b"Subject: =?utf-8?B?broken?=\r\n\r\nhello",
    ):
        await rig.send(cred["inbox"], raw)
    assert await rig.code(cred) == (204, None)
    await rig.send(cred["inbox"], otp_mail("975310"))
    assert (await rig.code(cred))[1]["code"] == "975310"


async def test_smtp_capabilities_and_hostname(rig: SmtpRig) -> None:
    """EHLO names the configured host and offers SIZE, 8BITMIME and SMTPUTF8."""

    def ehlo() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", rig.port, timeout=10) as smtp:
            return smtp.ehlo()

    code, text = await asyncio.to_thread(ehlo)
    assert code == 250
    lines = text.decode().splitlines()
    assert lines[0] == "inbox.localhost"
    assert {"8BITMIME", "SMTPUTF8"} <= set(lines)
    assert "SIZE 1048576" in lines
    assert "STARTTLS" not in lines  # no certificate configured


async def test_starttls(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    """With a certificate configured the listener offers STARTTLS and takes mail over it."""
    ca = trustme.CA()
    cert = ca.issue_cert("inbox.localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    settings = make_settings(
        tmp_path,
        database_url,
        OTPGATE_SMTP_TLS_CERT=str(cert_file),
        OTPGATE_SMTP_TLS_KEY=str(key_file),
    )
    assert settings.smtp_tls_cert is not None
    tls = tls_context(str(cert_file), str(key_file))
    async with smtp_rig(settings, aiohttp_client, tls=tls) as rig:
        cred = await rig.credential()
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        await rig.send(cred["inbox"], otp_mail("314159"), starttls=client_ctx)
        assert (await rig.code(cred))[1]["code"] == "314159"


async def test_idle_sessions_are_closed(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    """A session that stays silent past OTPGATE_SMTP_IDLE_TIMEOUT is closed by the server."""
    settings = make_settings(tmp_path, database_url, OTPGATE_SMTP_IDLE_TIMEOUT="1")
    async with smtp_rig(settings, aiohttp_client) as rig:
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
        assert (await reader.readline()).startswith(b"220 ")
        started = time.monotonic()
        rest = await asyncio.wait_for(reader.read(), 5)  # until the server hangs up
        assert reader.at_eof() and rest in (b"", b"421 4.4.2 Timeout\r\n")
        assert 0.8 < time.monotonic() - started < 4
        writer.close()


async def test_smtputf8_and_8bit_mail(rig: SmtpRig) -> None:
    """An SMTPUTF8 transaction with a UTF-8 sender and an 8-bit body delivers its code."""
    cred = await rig.credential()
    raw = (
        "From: Zoë <zoë@bücher.example>\r\nSubject: Ваш код подтверждения\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Ваш код подтверждения: 493817. Никому его не сообщайте.\r\n"  # noqa: RUF001
    ).encode()

    def send() -> Any:
        with smtplib.SMTP("127.0.0.1", rig.port, timeout=10) as smtp:
            smtp.ehlo()
            return smtp.sendmail(
                "zoë@bücher.example", cred["inbox"], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
            )

    assert await asyncio.to_thread(send) == {}
    status, body = await rig.code(cred)
    assert (status, body["code"]) == (200, "493817")
    assert body["sender"] == "zoë@xn--bcher-kva.example"


async def test_fast_hook_discovery_finds_what_aiosmtpd_would(rig: SmtpRig) -> None:
    """The short __dir__ leaves aiosmtpd the same commands, hooks and AUTH it finds alone."""
    from aiosmtpd.smtp import SMTP

    from gateway.app import smtp_limits
    from smtp.server import InboxHandler, InboxSMTP

    loop = asyncio.get_running_loop()
    handler = InboxHandler(rig.gateway.services.inbound, smtp_limits(rig.gateway.settings))
    ours = InboxSMTP(handler, SessionGate(1), hostname="x", loop=loop)
    stock = SMTP(handler, hostname="x", loop=loop)
    stock_hooks = {
        m.replace("handle_", "") for m in object.__dir__(handler) if m.startswith("handle_")
    }
    assert set(ours._smtp_methods) == set(stock._smtp_methods)
    assert set(ours._auth_methods) == set(stock._auth_methods)
    assert set(ours._handle_hooks) == stock_hooks == {"PROXY", "RCPT", "DATA", "exception"}


async def test_each_mail_is_logged_at_info_with_its_outcome_or_refusal(
    rig: SmtpRig, caplog: pytest.LogCaptureFixture
) -> None:
    """Each mail leaves one info line: accepted with its credential and outcome, or refused
    with the reply and why; never the code, the text or an inbox's local part."""
    caplog.set_level("INFO", logger="otpgate.smtp")
    cred = await rig.credential()
    await rig.send(cred["inbox"], otp_mail("640213"))
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await rig.send("nobody-here@inbox.localhost", otp_mail("640214"))
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await rig.send("x@other.example", otp_mail("640215"))
    lines = [
        (r.getMessage(), {k: v for k, v in vars(r).items() if k in ("outcome", "reply", "reason")})
        for r in caplog.records
        if r.name == "otpgate.smtp" and r.levelname == "INFO"
    ]
    accepted = [extra for msg, extra in lines if msg == "accepted a mail"]
    assert accepted == [{"outcome": f"{cred['id']}: code stored"}]
    refused = [extra for msg, extra in lines if msg == "refused a mail"]
    assert {r["reply"] for r in refused} >= {"550 5.1.1", "550 5.7.1"}
    assert any("no credential has this inbox" in r["reason"] for r in refused)
    assert any("OTPGATE_INBOX_DOMAIN" in r["reason"] for r in refused)
    text = caplog.text
    assert "6402" not in text and "nobody-here" not in text
    assert cred["inbox"].split("@")[0] not in text


async def test_lines_over_the_rfc_limit_are_accepted_and_counted(rig: SmtpRig) -> None:
    """A header line over 1,000 characters is taken and counted; one over the bound is 500."""
    cred = await rig.credential()
    references = " ".join(f"<{n}.thread@service.example>" for n in range(120))
    assert len(references) > 3_000
    raw = (
        f"From: Service <no-reply@service.example>\r\nTo: {cred['inbox']}\r\n"
        f"Subject: Your sign-in code\r\nReferences: {references}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Your verification code is 640213. It expires in 10 minutes.\r\n"
    ).encode()
    await rig.send(cred["inbox"], raw)
    status, body = await rig.code(cred)
    assert (status, body["code"]) == (200, "640213")
    metrics = await (await rig.client.get("/metrics")).text()
    assert "otpgate_mail_long_lines_total 1" in metrics
    huge = raw.replace(b"References: ", b"X-Padding: " + b"a" * (MAX_LINE + 10) + b" ")
    with pytest.raises(smtplib.SMTPDataError) as info:
        await rig.send(cred["inbox"], huge)
    assert info.value.smtp_code == 500
    assert await rig.code(cred) == (204, None)


def forwarded_as_attachment(original: EmailMessage, by: str) -> EmailMessage:
    """*original* forwarded as an attachment as mail clients do: a note, a message/rfc822 part."""
    msg = EmailMessage()
    msg["From"] = f"Alice <{by}>"
    msg["To"] = "agent@inbox.localhost"
    msg["Subject"] = "Fwd: " + str(original["Subject"])
    msg.set_content("Forwarded as an attachment; call me on 555 0100 if it does not arrive.")
    msg.add_attachment(original)
    return msg


async def test_a_mail_forwarded_as_an_attachment_gives_the_originals_code(rig: SmtpRig) -> None:
    """The attached original's code is taken; the sender is the forwarder, for allowed_senders."""
    cred = await rig.credential()
    await rig.send(cred["inbox"], forwarded_as_attachment(otp_mail("509348"), "alice@corp.example"))
    status, body = await rig.code(cred)
    assert (status, body["code"], body["sender"]) == (200, "509348", "alice@corp.example")
    twice = forwarded_as_attachment(
        forwarded_as_attachment(otp_mail("772201"), "bob@corp.example"), "alice@corp.example"
    )
    await rig.send(cred["inbox"], twice)
    assert (await rig.code(cred))[1]["code"] == "772201"
    # The original's From is attachment content: it does not pass the sender check.
    guarded = await rig.credential("guarded", allowed_senders=["service.example"])
    await rig.send(
        guarded["inbox"], forwarded_as_attachment(otp_mail("118822"), "mallory@evil.example")
    )
    assert await rig.code(guarded) == (204, None)


async def _hog(port: int, source: str, stop: asyncio.Event, every: float) -> bool:
    """One connection from *source* that only sends NOOP; True while it was let in."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    except OSError:
        return False
    try:
        if not (await reader.readline()).startswith(b"220 "):
            return False
        while not stop.is_set():
            writer.write(b"NOOP\r\n")
            if not (await reader.readline()).startswith(b"250"):
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
        return True
    except OSError:
        return True
    finally:
        writer.close()


def _send_from(port: int, source: str, to: str, msg: Any) -> Any:
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as smtp:
        return smtp.sendmail("no-reply@service.example", to, msg.as_bytes(policy=SMTP_POLICY))


async def test_hogging_connections_leave_room_for_mail(rig: SmtpRig) -> None:
    """200 connections that only send NOOP, from ten loopback addresses, cannot keep a mail out."""
    cred = await rig.credential()
    stop = asyncio.Event()
    sources = [f"127.0.0.{i}" for i in range(1, 11)]
    hogs = [asyncio.create_task(_hog(rig.port, sources[i % 10], stop, 0.2)) for i in range(200)]

    async def settled() -> bool:
        return rig.gate.active + rig.gate.refused >= 200

    await eventually(settled)
    held = rig.gate.active
    started = time.monotonic()
    refused = await asyncio.to_thread(
        _send_from, rig.port, "127.0.0.200", cred["inbox"], otp_mail("246810")
    )
    took = time.monotonic() - started
    print(f"\nSMTP hogging: {held} held, {rig.gate.refused} refused, a mail in {took:.3f} s")
    assert refused == {}
    assert (await rig.code(cred))[1]["code"] == "246810"
    # No address holds more than its share, and a share is left for addresses holding none.
    assert max(rig.gate.held_by(s) for s in sources) <= 20
    assert held <= 200 - 200 * 20 // 100
    stop.set()
    await asyncio.gather(*hogs)


async def test_idle_commands_and_session_lifetime_are_bounded(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    """A session that only sends NOOP is closed after its allowance, and any after its lifetime."""
    settings = make_settings(
        tmp_path,
        database_url,
        OTPGATE_SMTP_MAX_IDLE_COMMANDS="3",
        OTPGATE_SMTP_SESSION_LIFETIME="2",
    )
    async with smtp_rig(settings, aiohttp_client) as rig:
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
        assert (await reader.readline()).startswith(b"220 ")
        replies = []
        for command in (b"NOOP", b"RSET", b"HELP", b"VRFY x@y.example"):
            writer.write(command + b"\r\n")
            replies.append(await reader.readline())
        assert [r[:3] for r in replies[:3]] == [b"250", b"250", b"250"]
        assert replies[3].startswith(b"421 4.7.0")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()

        # A session that keeps talking (EHLO is not counted) still ends at its lifetime.
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
        started = time.monotonic()
        assert (await reader.readline()).startswith(b"220 ")
        last = b""
        while time.monotonic() - started < 6:
            writer.write(b"EHLO client.example\r\n")
            lines = [await reader.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(await reader.readline())
            last = lines[-1]
            if not last.startswith(b"250"):
                break
            await asyncio.sleep(0.2)
        assert last.startswith(b"421 4.4.2"), last
        assert 1.5 < time.monotonic() - started < 4
        writer.close()
