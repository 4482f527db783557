"""The ingest worker: mail parsed and stored in a second process, and what happens when it dies."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.ingest.worker import IngestWorker
from gateway.settings import Settings

from .helpers import SmtpRig, eventually, otp_mail, parked, smtp_rig


@pytest.fixture
async def wrig(
    settings: Settings, aiohttp_client: Callable[..., Any]
) -> AsyncIterator[tuple[SmtpRig, IngestWorker]]:
    async with smtp_rig(settings, aiohttp_client, ingest=True) as rig:
        assert rig.gateway.worker is not None
        yield rig, rig.gateway.worker


async def test_worker_stores_and_wakes_the_agent(wrig: tuple[SmtpRig, IngestWorker]) -> None:
    """A mail stored by the worker wakes the agent waiting in the gateway, with the right code."""
    rig, _ = wrig
    cred = await rig.credential()
    waiter = asyncio.create_task(rig.code(cred, "?wait=20"))
    await parked(rig.gateway, cred["id"])
    await rig.send(cred["inbox"], otp_mail("602214", html_only=True))
    status, body = await asyncio.wait_for(waiter, 5)
    assert (status, body["code"], body["source"]) == (200, "602214", "email")
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'otpgate_messages_total{channel="email",outcome="code"} 1' in metrics


async def test_worker_outcomes_for_several_inboxes(wrig: tuple[SmtpRig, IngestWorker]) -> None:
    """Sender rules and per-credential patterns apply in the worker as in the gateway."""
    rig, _ = wrig
    guarded = await rig.credential("guarded", allowed_senders=["service.example"])
    plain = await rig.credential("plain")
    await rig.send(
        [guarded["inbox"], plain["inbox"]], otp_mail("777111", sender="x@elsewhere.example")
    )
    assert await rig.code(guarded) == (204, None)
    assert (await rig.code(plain))[1]["code"] == "777111"
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'otpgate_messages_total{channel="email",outcome="rejected"} 1' in metrics


async def test_junk_through_the_worker(wrig: tuple[SmtpRig, IngestWorker]) -> None:
    """Binary junk is accepted without a code and the worker keeps working."""
    rig, worker = wrig
    cred = await rig.credential()
    await rig.send(cred["inbox"], b"\x00\xff junk \x80" * 100)
    await rig.send(cred["inbox"], otp_mail("550011"))
    assert (await rig.code(cred))[1]["code"] == "550011"
    assert worker.restarts == 0


async def test_a_dead_worker_means_451_then_it_is_restarted(
    wrig: tuple[SmtpRig, IngestWorker],
) -> None:
    """If the worker dies, mail is answered 451 (never 250) until a new worker takes over."""
    rig, worker = wrig
    cred = await rig.credential()
    assert worker._proc is not None
    os.kill(worker._proc.pid, signal.SIGKILL)

    async def gone() -> bool:
        return worker.restarts == 1  # counted the moment the gateway sees the worker die

    await eventually(gone)
    with pytest.raises(smtplib.SMTPDataError) as info:
        await rig.send(cred["inbox"], otp_mail("123123"))
    assert info.value.smtp_code == 451

    async def restarted() -> bool:  # the supervisor starts a new worker after a pause
        return worker._writer is not None and worker.restarts == 1

    await eventually(restarted)
    assert worker.restarts == 1
    await rig.send(cred["inbox"], otp_mail("456456"))
    assert (await rig.code(cred))[1]["code"] == "456456"
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'otpgate_ingest_failures_total{channel="email"} 1' in metrics
    assert "otpgate_ingest_worker_restarts_total 1" in metrics
