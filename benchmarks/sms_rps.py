"""Signed Twilio webhooks per second: ``POST /sms/twilio`` with a fresh message each time.

Starts ``otpgate serve`` on a fresh SQLite data directory (or ``--database``)
on loopback with a Twilio auth token, gives 50 credentials a phone number
each, signs enough distinct inbound texts with the ``twilio`` package's own
algorithm that no request repeats during the run, and replays them with
``wrk`` (Debian package ``wrk``).  Every request is a real, new text: the
gateway checks its signature and hands it to its ingest worker, which
extracts its code and commits it before the gateway answers.  On SQLite the
texts stored are counted afterwards: at least every one answered.

    python benchmarks/sms_rps.py [--seconds 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from harness import call, gateway
from twilio.request_validator import RequestValidator

TOKEN = "benchmark-twilio-token-0123456789"  # noqa: S105 - a throwaway test token
NUMBERS = 50
#: Distinct texts for the warm-up.
WARM = 8000


def lua_script(data: Path) -> str:
    """A wrk script replaying the signed requests in *data* (signature TAB body per line)."""
    return f"""
local reqs = {{}}
init = function(args)
  -- Read here: wrk sets the Host header only in init, and a file keeps the
  -- script small (Lua limits the constants in one function).
  for line in io.lines("{data}") do
    local sig, body = line:match("^([^\t]+)\t(.*)$")
    reqs[#reqs + 1] = wrk.format("POST", "/sms/twilio", {{
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = sig}}, body)
  end
end
local i = 0
request = function() i = i + 1; return reqs[(i - 1) % #reqs + 1] end
local shown = false
response = function(status, headers, body)
  if status ~= 200 and not shown then shown = true; print(status, body) end
end
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--database", default=None, help="OTPGATE_DATABASE_URL (default SQLite)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    validator = RequestValidator(TOKEN)
    # More than the gateway can take in the warm-up (2 s) and the run: nothing repeats.
    total = WARM + 4000 * args.seconds
    with gateway(
        args.database,
        OTPGATE_TWILIO_AUTH_TOKEN=TOKEN,
        OTPGATE_SMS_RATE_LIMIT="100000",
        OTPGATE_LOG_LEVEL="warning",
    ) as gw:
        key = gw.tenant_key()
        numbers = []
        for n in range(NUMBERS):
            cred = call(gw.base, "/v1/credentials", {"name": f"bench-{n}"}, key)["id"]
            number = f"+1415555{n:04d}"
            call(gw.base, f"/v1/credentials/{cred}/phone", {"phone_number": number}, key, "PUT")
            numbers.append(number)
        url = gw.base + "/sms/twilio"
        bodies = []
        for i in range(total):
            params = {
                "MessageSid": f"SM{i:032x}",
                "AccountSid": "AC" + "0" * 32,
                "From": "+15005550006",
                "To": numbers[i % NUMBERS],
                "Body": f"Your verification code is {100000 + i % 900000}. Do not share it.",
                "NumMedia": "0",
            }
            bodies.append((validator.compute_signature(url, params), urlencode(params)))
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "warm.txt").write_text("".join(f"{s}\t{b}\n" for s, b in bodies[-WARM:]))
            (Path(tmp) / "run.txt").write_text("".join(f"{s}\t{b}\n" for s, b in bodies[:-WARM]))
            warm = Path(tmp) / "warm.lua"
            warm.write_text(lua_script(Path(tmp) / "warm.txt"))
            script = Path(tmp) / "sms.lua"
            script.write_text(lua_script(Path(tmp) / "run.txt"))
            warmed = subprocess.run(
                ["wrk", "-t1", "-c8", "-d2s", "-s", str(warm), gw.base],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            out = subprocess.run(
                [
                    "wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
                    "-s", str(script), gw.base,
                ],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
        stored = None if args.database else _stored(gw.work / "data" / "otpgate.db")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    sent = _answered(out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(out)
    print(
        f"POST /sms/twilio (signed, distinct texts): {rps:.0f} requests/s, "
        f"non-2xx: {non2xx.group(1) if non2xx else 0}, "
        f"repeats: {max(0, sent - (total - WARM))}"
    )
    if stored is not None:
        answered = sent + min(WARM, _answered(warmed))  # (past WARM: redeliveries)
        print(f"texts stored: {stored}, distinct texts answered: {answered}")
        if stored < answered:
            print("fewer texts stored than answered", file=sys.stderr)
            print(warmed, file=sys.stderr)
            return 1
    return 0


def _answered(wrk_output: str) -> int:
    return int(re.search(r"(\d+) requests in", wrk_output).group(1))  # type: ignore[union-attr]


def _stored(path: Path) -> int:
    """Texts committed: one message id each (codes are never fetched in the run)."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM inbound_seen").fetchone()[0])


if __name__ == "__main__":
    raise SystemExit(main())
