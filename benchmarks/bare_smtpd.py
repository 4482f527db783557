"""The baseline for SMTP throughput: aiosmtpd whose handler only answers 250.

Same aiosmtpd protocol and options as the gateway's listener (explicit
hostname, size limit, SMTPUTF8), no storage, no parsing.  Run by
``smtp_throughput.py``; stops on SIGTERM.

    python benchmarks/bare_smtpd.py PORT
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from aiosmtpd.smtp import SMTP


class AcceptAll:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 2.0.0 OK"


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = AcceptAll()

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="bare.localhost",
            data_size_limit=1024 * 1024,
            enable_SMTPUTF8=True,
            timeout=30,
            loop=loop,
        )

    server = await loop.create_server(factory, "127.0.0.1", port, backlog=512)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
