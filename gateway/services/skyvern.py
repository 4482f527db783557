"""Skyvern's ``totp_url``: Skyvern polls it for a credential's code, and otpgate answers.

Skyvern's protocol (its ``skyvern/services/otp_service.py``, ``_get_otp_value_from_url``,
and ``docs/developers/credentials/handle-2fa.mdx``), for a run that meets a 2FA prompt:

* every 10 s, for up to 15 minutes, it sends ``POST <totp_url>`` with the body
  ``{"task_id": ..., "workflow_run_id": ..., "workflow_permanent_id": ...}`` (the
  keys it has), as compact JSON (``separators=(",", ":")``, not ASCII-escaped), and
  the headers ``x-skyvern-signature`` (hex HMAC-SHA256 of the raw body, keyed with
  the organisation's Skyvern API key), ``x-skyvern-timestamp`` (UNIX seconds, not
  signed) and ``Content-Type: application/json``; it waits 30 s for an answer;
* the answer is ``200`` with ``{"verification_code": "123456"}``, or
  ``{"verification_code": ""}`` while there is none yet; anything else counts as
  a failed poll.  A value over 10 characters is read by its LLM (a bare URL is
  taken as a magic link without it).

Here a credential's ``totp_url`` carries a random token (stored as a keyed hash),
and the Skyvern API key given with it checks each request's signature, compared
in constant time: both are needed, since Skyvern does not sign its timestamp and
a request seen on the wire could otherwise be replayed.  The first poll of a run
opens a login on the credential that also takes what arrived in the 2 minutes
before (Skyvern asks only after the site sent its code), so the run's code is
its alone and handed out once; the answer waits up to 20 s for one.  A later
poll of the same run means the site asked again (it refused the code, or wants
another step): the login's last hand-out is rejected and only a newer code is
given.  With no code, a sign-in link that came is answered.  A new run finishes
the previous run's login (``succeeded`` when it had handed something out since
its last refusal, else ``failed``); a login nobody finishes ends at its ttl.
A link that arrives while an answer waits for a code is given at the next poll.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import BadInput, Conflict, NotFound, Unauthenticated
from ..store import credentials as credential_rows
from ..store import logins as login_rows
from ..store import skyvern as skyvern_rows
from ..store.db import Database
from ..vault import KeyRing, Vault
from .audit import SYSTEM, Actor, AuditTrail
from .logins import LoginService

log = logging.getLogger("otpgate.skyvern")

#: The field the Skyvern API key is sealed as, under the credential's data key.
FIELD = "skyvern_api_key"
#: A run's login lasts as long as Skyvern polls (15 minutes).
LOGIN_TTL = 900
#: What arrived this long before a run's first poll is its too.
LOOKBACK = 120.0
#: How long an answer waits for a code (Skyvern waits 30 s for it).
HOLD = 20.0
#: The run ids Skyvern sends, most specific first.
RUN_KEYS = ("workflow_run_id", "task_id")


@dataclass(frozen=True, slots=True)
class Endpoint:
    credential_id: str
    totp_url: str


class SkyvernEndpoints:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        keyring: KeyRing,
        logins: LoginService,
        audit: AuditTrail,
        *,
        public_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._keyring = keyring
        self._logins = logins
        self._audit = audit
        self._public_url = public_url.rstrip("/")
        self._clock = clock

    def _hash(self, token: str) -> bytes:
        return self._keyring.keyed_hash("skyvern:" + token)

    async def configure(
        self, tenant_id: str, cred_id: str, api_key: str, *, actor: Actor = SYSTEM
    ) -> Endpoint:
        """A new ``totp_url`` for the credential (replacing any), checked with *api_key*."""
        token = secrets.token_urlsafe(32)
        async with self._db.write() as conn:
            sealed = await credential_rows.get_sealed(conn, tenant_id, cred_id)
            if sealed is None:
                raise NotFound("no such credential")
            blob = self._vault.seal_field_under(
                sealed[0], api_key.encode(), tenant_id=tenant_id, credential_id=cred_id,
                field=FIELD,
            )  # fmt: skip
            await skyvern_rows.replace(
                conn,
                {
                    "credential_id": cred_id,
                    "tenant_id": tenant_id,
                    "token_hash": self._hash(token),
                    "api_key": blob,
                    "created_at": self._clock(),
                },
            )
            await self._audit.append(conn, tenant_id, actor, "skyvern.set", credential_id=cred_id)
        log.info("skyvern endpoint set", extra={"credential": cred_id})
        return Endpoint(cred_id, f"{self._public_url}/skyvern/totp/{token}")

    async def remove(self, tenant_id: str, cred_id: str, *, actor: Actor = SYSTEM) -> None:
        async with self._db.write() as conn:
            if not await skyvern_rows.remove(conn, tenant_id, cred_id):
                raise NotFound("this credential has no Skyvern endpoint")
            await self._audit.append(
                conn, tenant_id, actor, "skyvern.removed", credential_id=cred_id
            )

    async def poll(self, token: str, body: bytes, signature: str | None) -> str:
        """Answer one of Skyvern's polls: a code, a link, or ``""`` for "not yet"."""
        async with self._db.read() as conn:
            row = await skyvern_rows.by_token(conn, self._hash(token))
        if row is None:
            raise NotFound("no such Skyvern endpoint")
        tenant_id, cred_id = row.tenant_id, row.credential_id
        key = self._vault.open_field_under(
            row.data_key, row.api_key, tenant_id=tenant_id, credential_id=cred_id, field=FIELD
        )
        expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
        if not signature or not hmac.compare_digest(signature.encode(), expected):
            raise Unauthenticated(
                "x-skyvern-signature does not match the body signed with the Skyvern API key",
                code="bad_signature",
            )
        run = _run_of(body)
        login_id = await self._login_for(tenant_id, cred_id, run, row.run, row.login_id)
        if login_id is None:
            return ""  # another agent is signing in to the account: Skyvern asks again
        for wait in (0.0, HOLD):  # what is there, else wait for a code (a link is rarer)
            code = await self._logins.code(tenant_id, login_id, wait=wait)
            if code is not None:
                return code.code
            link = await self._logins.link(tenant_id, login_id)
            if link is not None:
                return link.url
        return ""

    async def _login_for(
        self, tenant_id: str, cred_id: str, run: str, last_run: str | None, last_login: str | None
    ) -> str | None:
        """The run's open login (a repeat poll rejects its last hand-out), or a new one."""
        if last_login is not None:
            async with self._db.read() as conn:
                current = await login_rows.get(conn, tenant_id, last_login)
            still_open = (
                current is not None
                and current.status == login_rows.OPEN
                and current.expires_at > self._clock()
            )
            if still_open and run == last_run:
                if current.last_kind is not None:
                    await self._logins.reject(tenant_id, last_login)
                return last_login
            if still_open:
                outcome = "succeeded" if current.last_kind is not None else "failed"
                with contextlib.suppress(Conflict):  # finished meanwhile
                    await self._logins.finish(tenant_id, last_login, outcome)
        try:
            opened = await self._logins.open(tenant_id, cred_id, ttl=LOGIN_TTL, lookback=LOOKBACK)
        except Conflict:
            return None
        async with self._db.write() as conn:
            await skyvern_rows.set_run(conn, cred_id, run, opened.id)
        log.info("skyvern run signing in", extra={"credential": cred_id, "login": opened.id})
        return opened.id


def _run_of(body: bytes) -> str:
    """The Skyvern run a poll is for: its ``workflow_run_id``, else its ``task_id``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body is not the JSON object Skyvern sends") from None
    if isinstance(data, dict):
        for key in RUN_KEYS:
            value = data.get(key)
            if isinstance(value, str) and 0 < len(value) <= 200:
                return value
    raise BadInput("the body names no task_id or workflow_run_id")
