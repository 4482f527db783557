"""Two replicas on one PostgreSQL: cross-replica latency, and SMTP throughput 1 vs 2.

Starts ``otpgate serve`` twice on one PostgreSQL database and one key ring
(replica A, then B), then measures:

- **cross-replica arrival-to-agent latency**: an agent long-polls replica B
  while the mail goes to replica A's SMTP listener; from the final ``.`` of
  DATA to the agent holding the code (the wake-up crosses PostgreSQL's
  ``NOTIFY``);
- **round trips to PostgreSQL per mail** (load-independent): an in-process
  gateway on the same database stores a mail's code and hands it out while
  SQLAlchemy's events count (``Database.round_trips``);
- **SMTP throughput**: Postfix's ``smtp-source`` (Debian ``postfix``) sends
  to A alone, then to A and B at once (half each), 20 sessions per sender,
  a connection per mail.

    python benchmarks/replicas.py --database-url postgresql://postgres@127.0.0.1:5432/bench \\
        [--rounds 300] [--messages 3000]

The database must exist and be empty or an otpgate database.  On a 2-core
machine both replicas and the load generators share the cores, so the
throughput figure shows the cost of coordination rather than a speed-up.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import time
from pathlib import Path

from harness import call, gateway
from latency import pct, rounds
from smtp_throughput import MAIL, SMTP_SOURCE, blast

from gateway.app import serving
from gateway.services.inbound import Message
from gateway.settings import Settings


async def round_trips(database_url: str, data_dir: Path) -> tuple[int, int, int]:
    """Round trips to store a mail's code, to hand it out, and to find nothing, in-process."""
    env = {"OTPGATE_DATA_DIR": str(data_dir), "OTPGATE_DATABASE_URL": database_url}
    async with serving(Settings.from_env(env), background=False, ingest=False) as gw:
        tenant = await gw.services.tenants.create("round-trips")
        cred = await gw.services.credentials.create(
            tenant.id, name="c", username=None, password=None
        )
        info = await gw.services.credentials.get(tenant.id, cred.id)
        route = await gw.services.inbound.route_for_inbox(info.inbox.partition("@")[0])
        assert route is not None

        def mail(code: str) -> Message:
            text = f"Your verification code is {code}."
            return Message("email", "no-reply@bench.example", "bench.example", "Code", text)

        for n in range(3):  # the pool's connections have their statements prepared
            await gw.services.inbound.accept(mail(f"90000{n}"), [route])
            await gw.services.codes.code(tenant.id, cred.id)
        with gw.db.round_trips() as arrival:
            await gw.services.inbound.accept(mail("314159"), [route])
        with gw.db.round_trips() as hand_out:
            code = await gw.services.codes.code(tenant.id, cred.id)
        with gw.db.round_trips() as nothing:
            await gw.services.codes.code(tenant.id, cred.id)
        if code is None or code.code != "314159":
            raise RuntimeError("the in-process gateway did not hand out its code")
        return arrival.count, hand_out.count, nothing.count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    env = {"OTPGATE_CODE_TTL": "3600", "OTPGATE_LOG_LEVEL": "warning"}
    with gateway(args.database_url, **env) as a:
        shared = {**env, "OTPGATE_DATA_DIR": str(a.work / "data")}  # one key ring
        with gateway(args.database_url, **shared) as b:
            key = a.tenant_key()
            creds = [call(a.base, "/v1/credentials", {"name": f"c{i}"}, key) for i in range(10)]
            # Latency: agent on B, mail to A.
            asyncio.run(rounds(b.base, a.smtp_port, key, creds, 20))  # warm-up
            samples = [
                s * 1000 for s in asyncio.run(rounds(b.base, a.smtp_port, key, creds, args.rounds))
            ]
            print(
                f"cross-replica arrival-to-agent over {len(samples)} mails "
                f"(PostgreSQL, agent on B, mail to A): p50 {pct(samples, 0.50):.2f} ms, "
                f"p90 {pct(samples, 0.90):.2f} ms, "
                f"p99 {pct(samples, 0.99):.2f} ms, max {max(samples):.2f} ms"
            )
            stored, handed, empty = asyncio.run(round_trips(args.database_url, a.work / "data"))
            print(
                f"round trips to PostgreSQL per mail (SQLAlchemy events): {stored} to store "
                f"its code, {handed} to hand it out (GET /code with the code waiting), "
                f"{empty} for a GET /code that finds nothing"
            )
            if not Path(SMTP_SOURCE).exists():
                print("SMTP throughput: skipped (smtp-source, Debian package postfix, is missing)")
                return 0
            # Throughput: A alone, then A and B together.
            mail = a.work / "otp-mail.txt"
            mail.write_text(MAIL)
            inbox = creds[0]["inbox"]
            blast(a.smtp_port, inbox, mail, 200)
            blast(b.smtp_port, inbox, mail, 200)
            one = blast(a.smtp_port, inbox, mail, args.messages)
            half = args.messages // 2
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                jobs = [
                    pool.submit(blast, port, inbox, mail, half)
                    for port in (a.smtp_port, b.smtp_port)
                ]
                for job in jobs:
                    job.result()
            two = 2 * half / (time.perf_counter() - started)
    print(
        f"SMTP throughput ({args.messages} mails, 20 sessions per sender): one replica "
        f"{one:.0f} msg/s, two replicas {two:.0f} msg/s, ratio {two / one:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
