"""SMTP throughput of the gateway against a bare aiosmtpd server, side by side.

Both servers run at once on loopback; Postfix's ``smtp-source`` (Debian
package ``postfix``) drives them in turns (bare, gateway, bare, gateway, ...)
with 20 parallel sessions, a new connection per message, and a realistic
~2 KB multipart OTP mail.  The gateway acknowledges each mail only after its
code is durably committed; the bare server answers 250 without doing
anything.  Prints each round, the median rates and their ratio.

    python benchmarks/smtp_throughput.py [--messages 3000] [--rounds 3] [--database-url ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import call, free_port, gateway, wait_port

HERE = Path(__file__).resolve().parent
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"

MAIL = """\
From: "Example Accounts" <no-reply@accounts.example.com>
To: agent@inbox.localhost
Subject: Your Example sign-in code
Date: Fri, 27 Nov 2026 12:00:00 +0000
Message-ID: <a1b2c3d4e5f6.1234567890@mail.example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1_otp_boundary"

--b1_otp_boundary
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

Hi there,

Someone is trying to sign in to your Example account from a new device.
Your verification code is:

    482913

The code expires in 10 minutes. If you didn't try to sign in, you can
ignore this email; your password is still safe. For help, visit
https://help.example.com/sign-in or reply to this message.

Sign-in details: Chrome on Windows, near Berlin, Germany (IP 203.0.113.42)
at 12:00 UTC on 27 November 2026.

Thanks,
The Example Accounts team

You received this mandatory service email to keep your account secure.
Example Inc., 1 Market St, San Francisco, CA 94105, USA

--b1_otp_boundary
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<!DOCTYPE html><html><head><style>body{font-family:Arial,sans-serif;color:#=
333}.code{font-size:28px;letter-spacing:4px;font-weight:bold}</style></head=
><body><table width=3D"100%" cellpadding=3D"0" cellspacing=3D"0"><tr><td al=
ign=3D"center"><table width=3D"560"><tr><td><p>Hi there,</p><p>Someone is t=
rying to sign in to your Example account from a new device. Your verificati=
on code is:</p><p class=3D"code">482913</p><p>The code expires in 10 minute=
s. If you didn't try to sign in, you can ignore this email; your password i=
s still safe.</p><p style=3D"color:#888;font-size:12px">Example Inc., 1 Mar=
ket St, San Francisco, CA 94105</p></td></tr></table></td></tr></table></bo=
dy></html>

--b1_otp_boundary--
"""


def blast(port: int, rcpt: str, mail: Path, messages: int) -> float:
    """Send *messages* mails with smtp-source; return messages per second."""
    started = time.perf_counter()
    subprocess.run(
        [SMTP_SOURCE, "-s", "20", "-m", str(messages), "-F", str(mail),
         "-f", "no-reply@accounts.example.com", "-t", rcpt, f"127.0.0.1:{port}"],
        check=True,
    )  # fmt: skip
    return messages / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if not os.path.exists(SMTP_SOURCE):
        print("smtp-source is missing (apt-get install postfix)", file=sys.stderr)
        return 2
    bare_port = free_port()
    bare_proc = subprocess.Popen(
        [sys.executable, str(HERE / "bare_smtpd.py"), str(bare_port)], stdout=subprocess.DEVNULL
    )
    try:
        with gateway(args.database_url, OTPGATE_CODE_TTL="3600") as gw:
            wait_port(bare_port)
            mail = gw.work / "otp-mail.txt"
            mail.write_text(MAIL)
            key = gw.tenant_key()
            inbox = call(gw.base, "/v1/credentials", {"name": "bench"}, key)["inbox"]
            blast(bare_port, inbox, mail, 200)  # warm-up both
            blast(gw.smtp_port, inbox, mail, 200)
            bare_rates, gate_rates = [], []
            for i in range(args.rounds):
                bare_rates.append(blast(bare_port, inbox, mail, args.messages))
                gate_rates.append(blast(gw.smtp_port, inbox, mail, args.messages))
                print(
                    f"round {i + 1}: bare aiosmtpd {bare_rates[-1]:.0f} msg/s, "
                    f"otpgate {gate_rates[-1]:.0f} msg/s",
                    flush=True,
                )
    finally:
        bare_proc.send_signal(signal.SIGTERM)
        bare_proc.wait(timeout=30)
    bare, gate = statistics.median(bare_rates), statistics.median(gate_rates)
    print(
        f"median over {args.rounds} rounds of {args.messages} mails "
        f"({len(MAIL)} bytes, 20 sessions, a connection per mail): "
        f"bare {bare:.0f} msg/s, otpgate {gate:.0f} msg/s, ratio {gate / bare:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
