"""``otpgate demo`` end to end: every kind of 2FA in headless Chromium, no code in the agent's log.

The demo's gateway is a real ``otpgate serve`` child process; the sample
site really mails its codes to the gateway's SMTP listener and posts its
texts to ``/sms/twilio`` signed as Twilio does; a second browser page plays
the person who answers ``submit_url`` (a code, or a push approved by matching
the number).  Chromium is Debian's
``/usr/bin/chromium`` driven by Playwright: without either these tests skip
with the reason, unless ``OTPGATE_REQUIRE_BROWSER=1`` (CI) makes that a
failure.  Each login's time is printed, to be quoted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from gateway.demo.agent import CHROMIUM, LoginReport, run_agent
from gateway.demo.runner import demo_environment, run_in, summary

from .helpers import need_browser

ROOT = Path(__file__).resolve().parents[1]


def _leaks(secrets: Iterable[str], text: str) -> list[str]:
    """The secrets that appear in *text* (a code must stand alone, not inside a longer number)."""
    return [s for s in secrets if re.search(rf"(?<![0-9]){re.escape(s)}(?![0-9])", text)]


def _print_times(
    title: str, reports: list[LoginReport], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print(f"\n{title}")
        for line in summary(reports):
            print(f"  {line}")


async def test_the_demo_agent_logs_into_every_account_without_seeing_a_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each second factor gets the agent in, two agents take turns; no code is in its output."""
    need_browser()
    caplog.set_level(logging.DEBUG)
    lines: list[str] = []
    async with demo_environment(lines.append, workdir=tmp_path) as demo:
        reports = await run_in(demo, auto=True, say=lines.append, chromium=CHROMIUM)
        site = demo.site
        passwords = [a.password for a in site.accounts.values()]
    assert [(r.username, r.agent, r.ok, r.outcome) for r in reports] == [
        ("tess", "agent", True, "accepted"),
        ("emma", "agent", True, "accepted"),
        ("sam", "agent", True, "accepted"),
        ("pat", "agent", True, "accepted"),
        ("lena", "agent", True, "accepted"),
        ("olly", "agent", True, "accepted"),
        ("emma", "agent 1", True, "accepted"),
        ("emma", "agent 2", True, "accepted"),
    ]
    assert [r.source for r in reports] == [
        "totp", "email", "sms", "user", "link", "approval", "email", "email"
    ]  # fmt: skip
    # The site accepted each login's first code: the stale code left in emma's
    # inbox by the earlier sign-in was never typed (it would have been refused),
    # and the two agents signing in to emma at once did not take each other's.
    assert [(o.username, o.accepted) for o in site.outcomes] == [
        ("tess", True),
        ("emma", True),
        ("sam", True),
        ("pat", True),
        ("lena", True),
        ("olly", True),
        ("emma", True),
        ("emma", True),
    ]
    assert all(r.attempts == 1 for r in reports)
    assert len(site.codes) >= 8  # the window's TOTP codes, the stale one, five more
    # The push was approved on the phone by tapping the number the screen showed.
    [push] = site.pushes
    assert push.approved is True
    # Two agents at once: one login after the other, by the gateway's clock.
    spans = sorted((r.opened_at, r.finished_at, r.queued) for r in reports[-2:])
    (_, first_finished, first_queued), (second_opened, _, second_queued) = spans
    assert second_opened >= first_finished
    assert (first_queued, second_queued > 0) == (0.0, True)  # the second was told to queue
    captured = capsys.readouterr()
    agent_log = "\n".join(lines) + captured.out + captured.err + caplog.text
    assert "went from the gateway into the page" in agent_log and "[person]" in agent_log
    assert "pressed 'Approved'" in agent_log
    assert "the sign-in link went from the gateway into this browser page" in agent_log
    [link] = site.links  # mailed once, opened in the agent's own page, never shown
    assert _leaks([link], agent_log) == []
    assert "another agent is signing in to this account: queueing" in agent_log
    assert _leaks(site.codes, agent_log) == []
    assert _leaks(passwords, agent_log) == []
    gateway_log = (tmp_path / "gateway.log").read_text()
    assert "otpgate is serving" in gateway_log
    assert _leaks(site.codes, gateway_log) == []
    assert _leaks(site.links, gateway_log) == []
    _print_times("demo logins (headless Chromium, one gateway, loopback):", reports, capsys)


async def test_a_refused_code_is_followed_by_a_newer_one_in_the_browser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When the site refuses a texted code, the helper asks for a new one and types that."""
    need_browser()
    lines: list[str] = []
    async with demo_environment(lines.append, workdir=tmp_path, stale_code=False) as demo:
        sam = next(t for t in demo.targets if t.label == "text message")
        demo.site.accounts["sam"].refuse_next = 1  # as if the first code were outdated
        reports = await run_agent(
            demo.gateway_url,
            demo.api_key,
            demo.site_url,
            [sam],
            say=lines.append,
            auto=True,
            phone_url=demo.phone_url,
            chromium=CHROMIUM,
        )
        site = demo.site
    [report] = reports
    assert (report.ok, report.attempts, report.source) == (True, 2, "sms")
    assert [o.accepted for o in site.outcomes] == [False, True]
    assert len(site.codes) == 2  # a second text was sent ("Send a new code") and typed
    assert _leaks(site.codes, "\n".join(lines)) == []
    _print_times("a refused text, then the next one:", reports, capsys)


async def test_otpgate_demo_runs_from_the_command_line(tmp_path: Path) -> None:
    """``otpgate demo --auto`` starts everything, logs in eight times and exits 0."""
    need_browser()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "demo",
        "--auto",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 240)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "8 of 8 logins went through" in text
    # Of its temporary directory (made under TMPDIR) only the gateway's log is left, at
    # the path it printed; nothing was left in the cwd.
    (left,) = await asyncio.to_thread(os.listdir, tmp_path)
    assert left.startswith("otpgate-demo-")
    assert await asyncio.to_thread(os.listdir, tmp_path / left) == ["gateway.log"]
    assert f"the gateway's log is kept at {tmp_path / left / 'gateway.log'}" in text


def test_otpgate_demo_says_how_to_get_a_browser() -> None:
    """Without Chromium, ``otpgate demo`` exits 2 and names the packages to install."""
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--chromium", "/nonexistent/chromium"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "apt-get install chromium" in proc.stderr
    assert "--chromium" in proc.stderr


async def test_the_demo_keeps_the_gateway_log_it_pointed_to() -> None:
    """When the demo ends it removes its data but keeps the gateway's log at the path it
    printed, and says so."""
    lines: list[str] = []
    async with demo_environment(lines.append, stale_code=False) as demo:
        root = demo.workdir
    _check_log_kept(lines, root)


def _check_log_kept(lines: list[str], root: Path) -> None:
    pointed = [line for line in lines if "its log: " in line]
    assert len(pointed) == 1, lines
    log = Path(pointed[0].rsplit("its log: ", 1)[1])
    try:
        assert log.is_file() and log.stat().st_size > 0
        assert not (root / "data").exists()
        assert f"the gateway's log is kept at {log}" in lines
    finally:
        log.unlink(missing_ok=True)
        root.rmdir()


def test_the_demo_says_how_to_install_chromium_with_and_without_sudo() -> None:
    """The demo's missing-browser message works in a root shell too (no sudo there)."""
    from gateway.demo.runner import check_browser

    (problem, *_) = check_browser(Path("/nonexistent/chromium"))
    assert "apt-get install chromium as root" in problem
    assert "sudo apt-get install chromium" in problem
