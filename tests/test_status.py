"""``otpgate status``: the replicas seen lately and the work waiting, as counts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gateway.services.inbound import Message
from gateway.services.replicas import status

from .helpers import make_settings, opened


async def test_status_lists_the_running_replica_and_counts_waiting_work(
    tmp_path: Path, database_url: str
) -> None:
    """With one gateway running and one code waiting, status shows one replica and one code."""
    settings = make_settings(tmp_path, database_url)
    async with opened(settings) as gw, gw.background():
        await gw.heartbeat.beat()
        tenant = await gw.services.tenants.create("acme")
        cred = await gw.services.credentials.create(
            tenant.id, name="c", username=None, password="never-shown-pw"
        )
        route = await gw.services.inbound.route_for_inbox(cred.inbox.partition("@")[0])
        assert route is not None
        message = Message(
            channel="email",
            sender="a@service.example",
            sender_domain="service.example",
            subject="Code",
            text="Your verification code is 246802.",
        )
        await gw.services.inbound.accept(message, [route])
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTPGATE_")}
        env.update(
            OTPGATE_DATA_DIR=str(settings.data_dir),
            OTPGATE_DATABASE_URL=database_url,
        )
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        text = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert [r["pid"] for r in report["replicas"]] == [os.getpid()]
    assert report["replicas"][0]["draining"] is False
    assert report["waiting"]["codes_waiting"] == 1
    assert report["waiting"]["forwards_pending"] == 0
    assert "replicas seen in the last 60 s: 1" in text.stdout
    assert "codes waiting: 1" in text.stdout
    for output in (run.stdout, text.stdout, run.stderr, text.stderr):
        assert "246802" not in output and "never-shown-pw" not in output


async def test_two_heartbeats_at_once_record_one_replica(tmp_path: Path, database_url: str) -> None:
    """A replica's beats racing each other (loop and caller) leave one record and no error."""
    async with opened(make_settings(tmp_path, database_url)) as gw:
        await asyncio.gather(gw.heartbeat.beat(), gw.heartbeat.beat(), gw.heartbeat.beat())
        report = await status(gw.db, now=time.time())
    assert [r["id"] for r in report["replicas"]] == [gw.heartbeat.id]


def test_status_elsewhere_creates_no_database(tmp_path: Path) -> None:
    """`otpgate status` where no gateway's data is ends with one line naming the path, exit 2,
    and creates neither a database nor a directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTPGATE_")}
    env["OTPGATE_DATA_DIR"] = str(tmp_path / "elsewhere")
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "status"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("otpgate: "), run.stderr
    assert str(tmp_path / "elsewhere" / "otpgate.db") in lines[0]
    assert not (tmp_path / "elsewhere").exists()
