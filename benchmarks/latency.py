"""Arrival-to-agent latency: from the end of a mail's DATA to the waiting agent holding the code.

Starts ``otpgate serve`` on a fresh data directory (SQLite by default, or the
database given with ``--database-url``), creates credentials, and for each
round: an agent long-polls ``GET /v1/credentials/{id}/code?wait=...``, a
sender delivers an OTP mail over SMTP, and the time from the moment the
final ``.`` of DATA is sent to the moment the agent has the code in hand is
recorded.  Prints p50, p90, p99 and max.  With ``--login`` each agent opens a
login first and long-polls ``GET /v1/logins/{id}/code`` instead (the login
is finished after each round, outside the timed part).

    python benchmarks/latency.py [--rounds 500] [--login] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp
from harness import call, gateway


async def expect(reader: asyncio.StreamReader, prefix: bytes) -> None:
    while True:
        line = await reader.readline()
        if not line.startswith(prefix):
            raise RuntimeError(f"SMTP said {line!r}, expected {prefix!r}")
        if line[3:4] != b"-":
            return


async def send_mail(port: int, rcpt: str, code: str) -> float:
    """Deliver one mail; return the monotonic time at which its final dot was sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await expect(reader, b"220")
    writer.write(b"EHLO bench.example\r\n")
    await expect(reader, b"250")
    writer.write(b"MAIL FROM:<no-reply@service.example>\r\n")
    await expect(reader, b"250")
    writer.write(f"RCPT TO:<{rcpt}>\r\n".encode())
    await expect(reader, b"250")
    writer.write(b"DATA\r\n")
    await expect(reader, b"354")
    body = (
        "From: Service <no-reply@service.example>\r\nSubject: Your sign-in code\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Your verification code is {code}. It expires in 10 minutes.\r\n"
    )
    writer.write(body.encode())
    await writer.drain()
    sent = time.monotonic()
    writer.write(b".\r\n")
    await expect(reader, b"250")
    writer.write(b"QUIT\r\n")
    await writer.drain()
    writer.close()
    return sent


async def rounds(base: str, smtp_port: int, key: str, creds: list[dict[str, Any]], n: int,
                 login: bool = False) -> list[float]:  # fmt: skip
    samples = []
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for i in range(n):
            cred = creds[i % len(creds)]
            code = f"{(i * 7919 + 100003) % 1000000:06d}"
            poll = f"{base}/v1/credentials/{cred['id']}/code?wait=10"
            login_id = None
            if login:
                async with http.post(f"{base}/v1/credentials/{cred['id']}/logins", json={}) as r:
                    login_id = (await r.json())["id"]
                poll = f"{base}/v1/logins/{login_id}/code?wait=10"

            async def agent(poll: str = poll) -> tuple[float, str]:
                async with http.get(poll) as r:
                    got = (await r.json())["code"]
                return time.monotonic(), got

            waiting = asyncio.create_task(agent())
            await asyncio.sleep(0.005)  # the agent is waiting before the mail comes
            sent = await send_mail(smtp_port, cred["inbox"], code)
            received, got = await waiting
            if got != code:
                raise RuntimeError("the agent got the wrong code")
            samples.append(received - sent)
            if login_id is not None:
                finish = {"outcome": "succeeded"}
                async with http.post(f"{base}/v1/logins/{login_id}/finish", json=finish) as r:
                    r.raise_for_status()
    return samples


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--login", action="store_true", help="through GET /v1/logins/{id}/code")
    args = parser.parse_args()
    with gateway(args.database_url) as gw:
        key = gw.tenant_key()
        creds = [call(gw.base, "/v1/credentials", {"name": f"c{i}"}, key) for i in range(10)]
        asyncio.run(rounds(gw.base, gw.smtp_port, key, creds, 20, args.login))  # warm-up
        samples = asyncio.run(rounds(gw.base, gw.smtp_port, key, creds, args.rounds, args.login))
    ms = [s * 1000 for s in samples]
    engine = "PostgreSQL" if args.database_url else "SQLite"
    if args.login:
        engine += ", through a login"
    print(
        f"arrival-to-agent over {len(ms)} mails ({engine}): "
        f"p50 {pct(ms, 0.50):.2f} ms, p90 {pct(ms, 0.90):.2f} ms, "
        f"p99 {pct(ms, 0.99):.2f} ms, max {max(ms):.2f} ms, mean {statistics.fmean(ms):.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
