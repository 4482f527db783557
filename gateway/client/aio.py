"""``AsyncClient``: the SDK's one implementation of the API's logic (``Client`` wraps it).

Correlation (``expect_code``): an agent marks the moment just before it makes
a site send a code, and only a code the gateway received at or after that
mark is accepted.  The mark is the gateway's time (see ``clock``), not this
machine's, less ``margin`` seconds for clocks between gateway replicas or a
proxy's ``Date``.  A code left over from an earlier login (the frequent
"typed a stale code in a loop" failure) is older than the mark, so it is
never handed out to this block; ``since=`` is how the gateway is told.

Rejection (``PendingCode.reject``): the site refused the code last handed
out, so the next ``code()`` waits for a newer one: for TOTP, the next time
step (the same step's code would be refused again); for HOTP, the next
counter value, which the next request gives anyway; for a received code
(email, text, a person's answer), one received after the refused one.  Not
"after the rejection": a site often sends a fresh code as it refuses one
(or the agent pressed "send a new code"), and that code can reach the
gateway before the agent has read the refusal; it must not be skipped.
The refused code itself, and every older one, the gateway deleted when it
handed it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Generator, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from .clock import ServerClock
from .errors import CodeTimeout
from .models import (
    Authenticator,
    Code,
    Credential,
    Interaction,
    Secret,
    Tenant,
    Webhook,
    authenticator_from,
    code_from,
    credential_from,
    interaction_from,
    webhook_from,
)
from .transport import Answer, Retry, Transport

log = logging.getLogger("otpgate.client")

CredentialRef = Credential | str
InteractionRef = Interaction | str
When = datetime | float

#: The longest ``wait`` the gateway takes in one request; longer waits are split.
MAX_WAIT = 300
#: Seconds an answer may take beyond a long poll's wait before the read times out.
POLL_SLACK = 15.0
#: ``expect_code``'s default margin (seconds) for clock differences (see the module doc).
MARGIN = 1.0
#: ``await pending`` waits this long by default.
DEFAULT_WAIT = 120.0


def _id(ref: Credential | Interaction | str) -> str:
    return ref if isinstance(ref, str) else ref.id


def _iso(when: When) -> str:
    ts = when.timestamp() if isinstance(when, datetime) else float(when)
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _seconds(wait: float) -> str:
    return f"{max(0.0, wait):.3f}".rstrip("0").rstrip(".")


class AsyncClient:
    """The gateway's API, for asyncio code.

    ``async with AsyncClient(url, api_key) as gate:`` ... or call ``close()``.
    ``api_key`` is a tenant's key (the admin key only for ``create_tenant``).
    ``retry`` says how connection errors are retried (never error answers);
    ``timeout`` is the read timeout of a call that does not wait; a call with
    ``wait`` gets that much more.  Pass ``session`` to share an aiohttp
    session (it is then not closed here).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret,
        *,
        retry: Retry | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.clock = ServerClock()
        self._http = Transport(
            base_url,
            api_key if isinstance(api_key, Secret) else Secret(api_key),
            retry=retry or Retry(),
            timeout=timeout,
            connect_timeout=connect_timeout,
            session=session,
            clock=self.clock,
        )

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def __repr__(self) -> str:
        return f"AsyncClient({self.base_url!r}, api_key=<hidden>)"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.close()

    def server_now(self) -> datetime:
        """The gateway's current time as far as its answers tell: never later than the truth."""
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def _call(
        self,
        method: str,
        route: str,
        *,
        path: Mapping[str, str] | None = None,
        body: Any = None,
        repeatable: bool | None = None,
    ) -> Any:
        safe = method in ("GET", "PUT", "DELETE") if repeatable is None else repeatable
        answer = await self._http.request(method, route, path=path, body=body, repeatable=safe)
        return answer.body

    # -- operations -------------------------------------------------------------------

    async def health(self) -> bool:
        """True when the gateway answers ``/readyz`` (its database answers too)."""
        try:
            await self._call("GET", "/readyz")
        except Exception:
            return False
        return True

    # -- tenants (admin key) ----------------------------------------------------------

    async def create_tenant(self, name: str) -> Tenant:
        """A new tenant and its API key (shown once).  Needs the admin key."""
        body = await self._call("POST", "/v1/tenants", body={"name": name})
        return Tenant(body["id"], body["name"], Secret(body["api_key"]))

    # -- credentials ------------------------------------------------------------------

    async def create_credential(
        self, name: str, *, username: str | None = None, password: str | Secret | None = None
    ) -> Credential:
        """A credential set for one account; its ``inbox`` takes the account's 2FA mail."""
        payload: dict[str, Any] = {"name": name}
        if username is not None:
            payload["username"] = username
        if password is not None:
            payload["password"] = password.reveal() if isinstance(password, Secret) else password
        return credential_from(await self._call("POST", "/v1/credentials", body=payload))

    async def credential(self, credential: CredentialRef) -> Credential:
        return credential_from(
            await self._call("GET", "/v1/credentials/{id}", path={"id": _id(credential)})
        )

    async def credentials(self) -> list[Credential]:
        """Every credential of the tenant (all pages)."""
        found: list[Credential] = []
        after: str | None = None
        while True:
            query = {"limit": "1000"} | ({"after": after} if after else {})
            answer = await self._http.request(
                "GET", "/v1/credentials", params=query, repeatable=True
            )
            found += [credential_from(c) for c in answer.body["credentials"]]
            after = answer.body.get("next")
            if not after:
                return found

    async def update_credential(
        self,
        credential: CredentialRef,
        *,
        name: str | None = None,
        username: str | None = None,
        password: str | Secret | None = None,
    ) -> Credential:
        """Change what is given (None leaves a field as it is)."""
        payload: dict[str, Any] = {}
        if name is not None:
            payload["name"] = name
        if username is not None:
            payload["username"] = username
        if password is not None:
            payload["password"] = password.reveal() if isinstance(password, Secret) else password
        body = await self._call(
            "PATCH",
            "/v1/credentials/{id}",
            path={"id": _id(credential)},
            body=payload,
            repeatable=True,  # setting the same fields twice lands in the same state
        )
        return credential_from(body)

    async def delete_credential(self, credential: CredentialRef) -> None:
        await self._call("DELETE", "/v1/credentials/{id}", path={"id": _id(credential)})

    async def password(self, credential: CredentialRef) -> Secret:
        """The account's password, for its login form (``reveal()`` it where it is typed)."""
        body = await self._call(
            "GET", "/v1/credentials/{id}/password", path={"id": _id(credential)}
        )
        return Secret(body["password"])

    async def set_authenticator(
        self,
        credential: CredentialRef,
        *,
        otpauth_uri: str | Secret | None = None,
        secret: str | Secret | None = None,
        kind: str | None = None,
        digits: int | None = None,
        period: int | None = None,
        algorithm: str | None = None,
        counter: int | None = None,
    ) -> Authenticator:
        """Store a TOTP/HOTP secret: an ``otpauth://`` URI, or ``secret`` with ``kind``."""
        payload: dict[str, Any]
        if otpauth_uri is not None:
            uri = otpauth_uri.reveal() if isinstance(otpauth_uri, Secret) else otpauth_uri
            payload = {"otpauth_uri": uri}
        else:
            raw = secret.reveal() if isinstance(secret, Secret) else secret
            payload = {"secret": raw, "kind": kind}
            extras = {
                "digits": digits,
                "period": period,
                "algorithm": algorithm,
                "counter": counter,
            }
            payload |= {k: v for k, v in extras.items() if v is not None}
        body = await self._call(
            "PUT", "/v1/credentials/{id}/authenticator", path={"id": _id(credential)}, body=payload
        )
        return authenticator_from(body)

    async def delete_authenticator(self, credential: CredentialRef) -> None:
        await self._call(
            "DELETE", "/v1/credentials/{id}/authenticator", path={"id": _id(credential)}
        )

    async def set_phone(self, credential: CredentialRef, phone_number: str) -> Credential:
        """Assign an E.164 number: texts to it reach this credential."""
        body = await self._call(
            "PUT",
            "/v1/credentials/{id}/phone",
            path={"id": _id(credential)},
            body={"phone_number": phone_number},
        )
        return credential_from(body)

    async def delete_phone(self, credential: CredentialRef) -> None:
        await self._call("DELETE", "/v1/credentials/{id}/phone", path={"id": _id(credential)})

    # -- codes --------------------------------------------------------------------------

    async def code(
        self,
        credential: CredentialRef,
        *,
        wait: float = 0,
        since: When | None = None,
        min_validity: int = 0,
        source: str | None = None,
    ) -> Code | None:
        """The credential's code, or None when none came within ``wait`` seconds.

        With an authenticator: a TOTP code valid for at least ``min_validity``
        more seconds (the gateway waits for the next step, within ``wait``),
        or the next HOTP code.  Otherwise the newest code received by mail,
        text or from a person at or after ``since`` (the gateway's clock: use
        ``expect_code`` rather than a time of your own), handed out once.
        Waits longer than the gateway's 300 s are split into several requests.
        """
        cred_id = _id(credential)
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            chunk = min(remaining, MAX_WAIT)
            chunk_end = time.monotonic() + chunk

            def query(chunk_end: float = chunk_end) -> dict[str, str]:
                # Evaluated per try: a repeated long poll waits only what is left.
                left = max(0.0, chunk_end - time.monotonic())
                params = {"wait": _seconds(left)}
                if min_validity:
                    params["min_validity"] = str(int(min_validity))
                if since is not None:
                    params["since"] = _iso(since)
                if source is not None:
                    params["source"] = source
                return params

            answer = await self._http.request(
                "GET",
                "/v1/credentials/{id}/code",
                path={"id": cred_id},
                params=query,
                repeatable=True,  # see transport: repeating a code read never makes it worse
                read_timeout=self._http.timeout + chunk + POLL_SLACK,
            )
            if answer.status == 200:
                code = code_from(answer.body)
                log.debug("code handed out (source=%s)", code.source)
                return code
            if deadline - time.monotonic() <= 0:
                return None

    def expect_code(
        self,
        credential: CredentialRef,
        *,
        source: str | None = None,
        margin: float = MARGIN,
    ) -> contextlib.AbstractAsyncContextManager[PendingCode]:
        """Mark now, before the agent makes the site send a code; only a later code is taken.

        ``async with gate.expect_code(cred) as pending:`` click "Sign in";
        then ``code = await pending`` (or ``await pending.code(wait=...)``).
        Entering asks the gateway for the credential (which also reads its
        clock), so an unknown credential fails here, before anything is sent.
        """
        return self._expect(credential, source, margin)

    @contextlib.asynccontextmanager
    async def _expect(
        self, credential: CredentialRef, source: str | None, margin: float
    ) -> AsyncIterator[PendingCode]:
        info = await self.credential(credential)
        mark = self.clock.now() - max(0.0, margin)
        log.debug("expecting a code received from %s on", _iso(mark)[:23] + "Z")
        yield PendingCode(self, info, since=mark, source=source)

    # -- interactions ------------------------------------------------------------------

    async def create_interaction(
        self, credential: CredentialRef, *, prompt: str | None = None
    ) -> Interaction:
        """Ask a person for the code: hand them ``submit_url`` (the webhooks get it too)."""
        payload = {} if prompt is None else {"prompt": prompt}
        body = await self._call(
            "POST",
            "/v1/credentials/{id}/interactions",
            path={"id": _id(credential)},
            body=payload,
        )
        return interaction_from(body)

    async def interaction(self, interaction: InteractionRef) -> Interaction:
        body = await self._call("GET", "/v1/interactions/{id}", path={"id": _id(interaction)})
        return interaction_from(body)

    async def submit_code(self, interaction: InteractionRef, code: str | Secret) -> None:
        """Answer an interaction with the tenant's key (a person uses ``submit_url``)."""
        value = code.reveal() if isinstance(code, Secret) else code
        await self._call(
            "POST",
            "/v1/interactions/{id}/code",
            path={"id": _id(interaction)},
            body={"code": value},
        )

    async def interaction_code(
        self, interaction: InteractionRef, *, wait: float = 0
    ) -> Code | None:
        """A person's answer (once), or None while pending after ``wait`` seconds.

        Raises ``Expired`` once the interaction expired, or when its code was
        already handed out (``code == "already_delivered"``).
        """
        interaction_id = _id(interaction)
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            chunk = min(max(0.0, deadline - time.monotonic()), MAX_WAIT)
            chunk_end = time.monotonic() + chunk

            def query(chunk_end: float = chunk_end) -> dict[str, str]:
                return {"wait": _seconds(chunk_end - time.monotonic())}

            answer: Answer = await self._http.request(
                "GET",
                "/v1/interactions/{id}/code",
                path={"id": interaction_id},
                params=query,
                repeatable=True,
                read_timeout=self._http.timeout + chunk + POLL_SLACK,
            )
            if answer.status == 200:
                return code_from(answer.body, source="user")
            if deadline - time.monotonic() <= 0:
                return None

    # -- webhooks ----------------------------------------------------------------------

    async def create_webhook(self, url: str, events: list[str] | tuple[str, ...]) -> Webhook:
        """An endpoint for events; its ``secret`` (shown once) verifies the deliveries."""
        body = await self._call("POST", "/v1/webhooks", body={"url": url, "events": list(events)})
        return webhook_from(body)

    async def webhooks(self) -> list[Webhook]:
        body = await self._call("GET", "/v1/webhooks")
        return [webhook_from(w) for w in body["webhooks"]]

    async def delete_webhook(self, webhook: Webhook | str) -> None:
        webhook_id = webhook if isinstance(webhook, str) else webhook.id
        await self._call("DELETE", "/v1/webhooks/{id}", path={"id": webhook_id})


class PendingCode:
    """A code an agent is waiting for, correlated with the moment it asked for it.

    ``await pending`` waits up to two minutes; ``await pending.code(wait=...)``
    as long as you say.  After a site refused the code, ``await
    pending.reject()`` and ask again: the next code is a newer one.  The
    object never holds the code itself.
    """

    def __init__(
        self, client: AsyncClient, credential: Credential, *, since: float, source: str | None
    ) -> None:
        self._client = client
        self.credential = credential
        self._since = since
        self._source = source
        #: The end of the TOTP step whose code was refused: only a later step is taken.
        self._after_step: float | None = None
        self._last: Code | None = None
        self.handed_out = 0

    def __repr__(self) -> str:
        return (
            f"PendingCode(credential={self.credential.id!r}, since={_iso(self._since)[:23]!r}, "
            f"handed_out={self.handed_out})"
        )

    @property
    def since(self) -> datetime:
        """The gateway time from which a received code is accepted."""
        return datetime.fromtimestamp(self._since, UTC)

    def __await__(self) -> Generator[Any, None, Code]:
        return self.code().__await__()

    async def code(self, *, wait: float = DEFAULT_WAIT, min_validity: int = 0) -> Code:
        """The code, waiting up to ``wait`` seconds; ``CodeTimeout`` when none came.

        ``min_validity`` (TOTP) is capped below the authenticator's period.
        """
        auth = self.credential.authenticator
        if auth is not None and auth.kind == "totp":
            min_validity = min(min_validity, auth.period - 1)
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            got = await self._client.code(
                self.credential,
                wait=remaining,
                since=self._since,
                min_validity=min_validity,
                source=self._source,
            )
            if got is None:
                raise CodeTimeout(f"no code for the credential within {wait:g} s")
            step_end = got.expires_at.timestamp() if got.expires_at is not None else None
            refused = self._after_step
            if got.source == "totp" and refused is not None and (step_end or 0) <= refused:
                # Still the refused step: wait for it to end, by the gateway's clock.
                pause = refused - self._client.clock.now()
                if pause > deadline - time.monotonic():
                    raise CodeTimeout(f"no new TOTP step within {wait:g} s")
                await asyncio.sleep(max(0.05, pause))
                continue
            self._last = got
            self.handed_out += 1
            return got

    async def reject(self) -> None:
        """The site refused the last code: the next ``code()`` waits for a newer one."""
        last = self._last
        if last is None:
            return
        if last.source == "totp" and last.expires_at is not None:
            self._after_step = last.expires_at.timestamp()
        elif last.source in ("email", "sms", "user") and last.received_at is not None:
            # Only a code received after the refused one (see the module doc).
            self._since = max(self._since, last.received_at.timestamp() + 0.001)
        log.debug("code rejected (source=%s); waiting for a newer one", last.source)
        self._last = None
