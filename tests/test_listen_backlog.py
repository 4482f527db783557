"""The kernel's queue of connections the gateway has not accepted yet, on both listeners.

asyncio listens again on a socket it is handed, with a queue of 100 unless told otherwise; past
it, Linux drops new connections' SYNs and each client waits for its retry, one second and then
three.  A fleet of agents reconnecting at once after a restart, or a burst of mail while the
event loop is busy, must wait in the queue instead.
"""

from __future__ import annotations

import select
import signal
import socket
import time
from pathlib import Path

import pytest

from gateway.listeners import LISTEN_BACKLOG

from .helpers import Server, serve_env

#: More than asyncio's default queue of 100, well within the gateway's.
CONNECTIONS = 300


def _connected_within(port: int, count: int, seconds: float) -> int:
    """Open *count* connections to *port* at once; how many the kernel completed in *seconds*."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            socks.append(sock)
        pending = {sock.fileno(): sock for sock in socks}
        done = 0
        deadline = time.monotonic() + seconds
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLOUT)
        while pending and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                sock = pending.pop(fd)
                poller.unregister(fd)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    done += 1
        return done
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP to pause the gateway")
def test_connections_wait_in_the_queue_while_the_gateway_cannot_accept(tmp_path: Path) -> None:
    """With the gateway paused, so that it accepts nothing, 300 new HTTP connections and 300 new
    SMTP connections are all completed by the kernel, and served once it runs again."""
    assert LISTEN_BACKLOG >= 2 * CONNECTIONS
    env = serve_env(tmp_path / "data")
    server = Server(env, tmp_path).start()
    ports = {name: int(env[name].rsplit(":", 1)[1]) for name in ("OTPGATE_HTTP", "OTPGATE_SMTP")}
    try:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGSTOP)
        try:
            connected = {
                name: _connected_within(port, CONNECTIONS, 1.0) for name, port in ports.items()
            }
        finally:
            server.proc.send_signal(signal.SIGCONT)
        assert connected == {"OTPGATE_HTTP": CONNECTIONS, "OTPGATE_SMTP": CONNECTIONS}
        # The gateway now accepts the queued connections, finds each closed, and serves again.
        deadline = time.monotonic() + 10
        while (status := server.call("GET", "/healthz")[0]) != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status == 200
        with socket.create_connection(("127.0.0.1", ports["OTPGATE_SMTP"]), timeout=10) as smtp:
            assert smtp.recv(1024).startswith(b"220 ")
    finally:
        server.kill()
