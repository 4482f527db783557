"""HTTP to the gateway: one request, its retries, and the error mapping.

Retries happen on connection errors only, never on an answer: a 4xx is the
caller's to handle, and a 5xx came from a gateway that did receive the
request (repeating it would double whatever it half did).  Which connection
errors are retried depends on whether the request may have reached the
gateway:

* the connection could not be made (refused, DNS, connect timeout): the
  request never left, so it is repeated whatever it is;
* the connection broke after the request was sent (reset, closed without an
  answer, read timeout): the gateway may have acted on it, so it is repeated
  only when the caller marked it ``repeatable``: reads, ``PUT`` and
  ``DELETE`` (repeating them lands in the same state), and the code reads.
  A code read hands out a code once; if its answer was lost, that code is
  lost either way, and repeating the read is the only way to get the next
  one, so repeating it never makes things worse.  A ``POST`` that creates
  something (a tenant, a credential, an interaction, a webhook) or answers
  an interaction is not repeated: the caller gets ``ConnectionFailed`` with
  ``maybe_processed=True`` and decides (list, then create again if missing).

Logins follow the same rule, request by request (``logins``):

* opening a login is never repeated once it may have arrived: if the first
  ``POST`` opened one and only its answer was lost, a repeat would meet that
  very login and get 409 ``login_in_progress`` (or, with ``wait``, queue
  behind it until it expires): the agent would be locked out of its own
  account by a login nobody holds.  It gets ``ConnectionFailed`` instead;
  the orphan ends by itself when its ``ttl`` runs out (finished as
  ``failed``), so keep ``ttl`` close to what a sign-in takes;
* a login's code and link reads are repeated, as the credential's are;
* ``reject`` and ``finish`` are repeated, since a repeat can only find its
  own work done: a second reject of the same hand-out answers 409
  ``nothing_handed_out``, a second finish 409 ``login_finished``, and
  ``Login`` takes either as success when the state is the one it asked for
  (it knows it had something to reject; the login's status is the outcome).
  A person's decision on an approval (``decide``) is repeated the same way.

Long polls (``poll``) are split into requests of at most ``MAX_WAIT``
seconds, the gateway's limit, each read with ``POLL_SLACK`` seconds to spare.

Nothing secret is logged: a line names the method and the route pattern
(``/v1/credentials/{id}/code``), never a body, a query or a header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from .clock import ServerClock
from .errors import ConnectionFailed, api_error
from .models import Secret

log = logging.getLogger("otpgate.client")

try:
    _VERSION = metadata.version("otpgate")
except metadata.PackageNotFoundError:  # run from a source tree
    _VERSION = "dev"
USER_AGENT = f"otpgate-client/{_VERSION}"

Params = Mapping[str, str] | Callable[[], Mapping[str, str]] | None

#: The longest ``wait`` the gateway takes in one request; longer waits are split.
MAX_WAIT = 300
#: Seconds an answer may take beyond a long poll's wait before the read times out.
POLL_SLACK = 15.0


@dataclass(frozen=True, slots=True)
class Retry:
    """How often and how patiently a request is repeated after a connection error.

    ``attempts`` counts every try (1: never repeat).  The pause before try
    *n + 1* is drawn from ``[b/2, b]`` with ``b = backoff * 2**(n - 1)``,
    capped at ``max_backoff``, so many agents that lost the same gateway do
    not all come back in the same instant.
    """

    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 4.0

    def pause(self, attempt: int) -> float:
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not a secret)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


class _Unanswered(Exception):
    def __init__(self, cause: BaseException, *, maybe_processed: bool) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause
        self.maybe_processed = maybe_processed


class Transport:
    """Requests to one gateway with one key, over one aiohttp session."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        *,
        retry: Retry,
        timeout: float,
        connect_timeout: float,
        session: aiohttp.ClientSession | None,
        clock: ServerClock,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must be an http(s) URL, such as http://127.0.0.1:8080")
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.retry = retry
        self.timeout = timeout
        self._connect_timeout = connect_timeout
        self._session = session
        self._own_session = session is None
        self.clock = clock

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Created on first use, inside the running loop, as aiohttp requires.
            # Idle connections are dropped well before servers usually drop them,
            # so a POST rarely meets a connection the server already closed.
            connector = aiohttp.TCPConnector(keepalive_timeout=10)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def request(
        self,
        method: str,
        route: str,
        *,
        path: Mapping[str, str] | None = None,
        params: Params = None,
        body: Any = None,
        repeatable: bool,
        read_timeout: float | None = None,
    ) -> Answer:
        """Send one request (repeated as the module says) and return a 2xx answer.

        Raises ``ApiError`` (by status) for an error answer and
        ``ConnectionFailed`` when no answer came.
        """
        url = self.base_url + route.format_map(
            {k: quote(v, safe="") for k, v in (path or {}).items()}
        )
        attempts = max(1, self.retry.attempts)
        for attempt in range(1, attempts + 1):
            query = params() if callable(params) else params
            try:
                return await self._once(method, route, url, query, body, read_timeout)
            except _Unanswered as exc:
                may_repeat = repeatable or not exc.maybe_processed
                if not may_repeat or attempt == attempts:
                    raise ConnectionFailed(
                        f"{method} {route}: no answer from {self.base_url} "
                        f"({type(exc.cause).__name__}) after {attempt} "
                        f"{'try' if attempt == 1 else 'tries'}"
                        + (
                            "; it may have been processed, so it was not repeated"
                            if exc.maybe_processed and not repeatable
                            else ""
                        ),
                        maybe_processed=exc.maybe_processed,
                    ) from exc.cause
                pause = self.retry.pause(attempt)
                log.warning(
                    "%s %s: %s; trying again in %.2f s (try %d of %d)",
                    method,
                    route,
                    type(exc.cause).__name__,
                    pause,
                    attempt + 1,
                    attempts,
                )
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    async def poll(
        self,
        route: str,
        *,
        path: Mapping[str, str],
        wait: float,
        done: Callable[[Answer], bool] = lambda answer: answer.status == 200,
        params: Callable[[], Mapping[str, str]] | None = None,
    ) -> Answer:
        """``GET route?wait=`` until an answer is ``done`` or ``wait`` seconds are over.

        The wait is split into requests of at most ``MAX_WAIT`` seconds; a
        repeated request (after a broken connection) waits only what is left
        of its part.  Long polls are reads: always ``repeatable``.  Returns the
        last answer (a 204, or a 200 that is not ``done``, when time ran out).
        """
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            chunk = min(max(0.0, deadline - time.monotonic()), MAX_WAIT)
            chunk_end = time.monotonic() + chunk

            def query(chunk_end: float = chunk_end) -> dict[str, str]:
                left = f"{max(0.0, chunk_end - time.monotonic()):.3f}".rstrip("0").rstrip(".")
                return {"wait": left, **(params() if params is not None else {})}

            answer = await self.request(
                "GET",
                route,
                path=path,
                params=query,
                repeatable=True,
                read_timeout=self.timeout + chunk + POLL_SLACK,
            )
            if done(answer) or deadline - time.monotonic() <= 0:
                return answer

    async def _once(
        self,
        method: str,
        route: str,
        url: str,
        query: Mapping[str, str] | None,
        body: Any,
        read_timeout: float | None,
    ) -> Answer:
        headers = {
            "Authorization": f"Bearer {self._key.reveal()}",
            "Accept": "application/json",
        }
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self._connect_timeout,
            sock_read=self.timeout if read_timeout is None else read_timeout,
        )
        sent = time.monotonic()
        try:
            async with self._get_session().request(
                method,
                url,
                params=query,
                json=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                raw = await resp.read()
                received = time.monotonic()
                status = resp.status
                date = resp.headers.get("Date")
                content_type = resp.content_type
                reason = resp.reason or ""
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise _Unanswered(exc, maybe_processed=False) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            raise _Unanswered(exc, maybe_processed=True) from exc
        self.clock.observe(date, sent, received)
        log.debug("%s %s -> %d in %.0f ms", method, route, status, (received - sent) * 1000)
        if status >= 400:
            raise _error(status, raw, content_type, reason, retry_after)
        if status == 204 or not raw:
            return Answer(status, None)
        if content_type != "application/json":
            return Answer(status, raw.decode("utf-8", "replace"))
        return Answer(status, json.loads(raw))


def _error(
    status: int, raw: bytes, content_type: str, reason: str, retry_after: str | None
) -> Exception:
    code, message = "http_error", reason or f"HTTP {status}"
    if content_type == "application/json":
        try:
            err = json.loads(raw).get("error", {})
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
        except (ValueError, AttributeError):
            pass
    after: float | None = None
    if retry_after is not None:
        try:
            after = float(retry_after)
        except ValueError:
            after = None
    return api_error(status, code, message, retry_after=after)
