"""The TypeScript SDK in ``clients/typescript`` builds and passes its own tests.

Its tests (``node --test``) start a real ``otpgate serve`` from this Python
environment, on loopback ports with a fresh data dir, and drive Debian's
Chromium through playwright-core.  Without Node 20 and npm this skips with
the reason, unless ``OTPGATE_REQUIRE_NODE=1`` (set by ``.ci/run``) makes that
a failure; without Chromium the browser tests skip inside the Node run in the
same way (``OTPGATE_REQUIRE_BROWSER``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from .helpers import ROOT, missing

PACKAGE = ROOT / "clients" / "typescript"
REQUIRE = "OTPGATE_REQUIRE_NODE"


def _run(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 80) -> str:
    return "\n".join((proc.stdout + proc.stderr).splitlines()[-lines:])


def test_the_typescript_sdk_builds_and_passes_its_tests() -> None:
    """``npm ci`` and ``npm test`` (the tsc build, then the ``node --test`` suite) succeed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("node and npm are not installed (apt-get install nodejs npm)", REQUIRE)
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        missing(f"node {version} is older than 20, the SDK's minimum", REQUIRE)
    env = {**os.environ, "OTPGATE_PYTHON": sys.executable}
    installed = _run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], env, 600)
    if installed.returncode != 0:
        missing(f"npm ci failed (no registry?):\n{_tail(installed, 20)}", REQUIRE)
    tested = _run([npm, "test"], env, 900)  # builds first (pretest: tsc, then the type checks)
    assert tested.returncode == 0, _tail(tested)
    summary = [line for line in tested.stdout.splitlines() if line.startswith("# ")]
    assert any(line.startswith("# pass ") and line != "# pass 0" for line in summary), summary
