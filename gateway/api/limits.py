"""What a slow or oversized request body may cost: a deadline and an early refusal.

aiohttp bounds the time to send a request's headers (``keepalive_timeout``,
see ``gateway.listeners``) but not its body: a client that announces a body
and sends it a byte at a time holds its handler, and its connection, for as
long as it likes.  :func:`body_deadline` gives the whole body
``OTPGATE_HTTP_BODY_TIMEOUT`` seconds from the moment the handler starts; a
body still incomplete then makes every read of it raise :class:`BodyTooSlow`,
which the error middleware answers with 408 and closes the connection.  A
``Content-Length`` larger than any route accepts is refused with 413 before
anything is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.streams import StreamReader

from .container import SERVICES
from .replies import json_response

#: The largest body any route takes (a picture of a QR code, base64 in JSON).
LARGEST_BODY = 8 * 1024 * 1024 + 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BodyTooSlow(TimeoutError):
    """The request's body did not arrive in time.

    A ``TimeoutError``, so that aiohttp, which reads what is left of an
    unread body after the answer, treats it as the timeout it is.
    """


def _too_slow(content: StreamReader) -> None:
    if not content.is_eof():
        content.set_exception(BodyTooSlow())


def too_large(request: web.Request) -> web.Response | None:
    """413, closing the connection, for a body announced larger than any route takes.

    The error middleware asks first, before the key is checked: nothing of such a
    body is read, whoever sends it.
    """
    if request.content_length is None or request.content_length <= LARGEST_BODY:
        return None
    response = json_response(
        {"error": {"code": "too_large", "message": "the request body is too large"}},
        status=413,
    )
    response.force_close()
    return response


@web.middleware
def body_deadline(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Bound the time to send a request's body.

    Not a coroutine itself: a request without a body (every long poll) goes
    straight to *handler*, and a parked one keeps no frame of this middleware.
    """
    if not request.body_exists or request.content.is_eof():
        return handler(request)
    return _with_deadline(request, handler)


async def _with_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    timeout = request.app[SERVICES].settings.http_body_timeout
    timer = asyncio.get_running_loop().call_later(timeout, _too_slow, request.content)
    try:
        return await handler(request)
    finally:
        timer.cancel()
