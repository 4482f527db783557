"""``AsyncClient``: the SDK's one implementation of the API's logic (``Client`` wraps it).

Correlation (``expect_code``, ``expect_link``): an agent marks the moment
just before it makes a site send a code or a link, and only what the gateway
received at or after that mark is accepted.  The mark is the gateway's time
(see ``clock``), not this machine's, less ``margin`` seconds for clocks
between gateway replicas or a proxy's ``Date``.  A code left over from an
earlier login (the frequent "typed a stale code in a loop" failure) is older
than the mark, so it is never handed out to this block; ``since=`` is how the
gateway is told.  What to do after a refusal is in ``pending``.

A login (``login``, see ``logins``) goes further: the gateway itself keeps
the mark, and keeps every other agent off the account until it finishes.

Approvals (``request_approval``): a person approves or denies a sign-in on
the page behind ``submit_url``, after checking the number the site shows;
the agent waits for the decision.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import aiohttp

from .clock import ServerClock
from .errors import Conflict, LoginInProgress
from .logins import Login, LoginBlock
from .models import (
    Authenticator,
    BackupCode,
    Code,
    Credential,
    Interaction,
    Link,
    Secret,
    Tenant,
    Webhook,
    authenticator_from,
    code_from,
    credential_from,
    interaction_from,
    iso_time,
    link_from,
    webhook_from,
)
from .pending import DEFAULT_WAIT, PendingCode, PendingLink
from .transport import MAX_WAIT, POLL_SLACK, Retry, Transport

log = logging.getLogger("otpgate.client")

CredentialRef = Credential | str
InteractionRef = Interaction | str
When = datetime | float

#: ``expect_code``'s default margin (seconds) for clock differences (see the module doc).
MARGIN = 1.0
#: How long ``request_approval`` waits by default: the gateway's default interaction TTL.
APPROVAL_WAIT = 300.0

__all__ = ["DEFAULT_WAIT", "AsyncClient", "PendingCode", "PendingLink"]

_P = TypeVar("_P", PendingCode, PendingLink)
OnSubmitUrl = Callable[[str], Awaitable[object] | object]


def _id(ref: Credential | Interaction | Login | str) -> str:
    return ref if isinstance(ref, str) else ref.id


async def hand_over(url: str, on_submit_url: OnSubmitUrl | None, what: str) -> None:
    """Give a person the ``submit_url``: to ``on_submit_url``, or printed when there is none."""
    if on_submit_url is None:
        print(f"otpgate: a person must {what}; open {url}", flush=True)
        return
    outcome = on_submit_url(url)
    if inspect.isawaitable(outcome):
        await outcome


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

    # -- codes and links ----------------------------------------------------------------

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
        A code read is repeated after a broken connection (see ``transport``).
        """
        params: dict[str, str] = {}
        if min_validity:
            params["min_validity"] = str(int(min_validity))
        if since is not None:
            params["since"] = iso_time(since)
        if source is not None:
            params["source"] = source
        answer = await self._http.poll(
            "/v1/credentials/{id}/code",
            path={"id": _id(credential)},
            wait=wait,
            params=lambda: params,
        )
        if answer.status != 200:
            return None
        code = code_from(answer.body)
        log.debug("code handed out (source=%s)", code.source)
        return code

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
        return self._expect(credential, margin, lambda info, mark: PendingCode(
            self, info, since=mark, source=source
        ))  # fmt: skip

    async def link(
        self, credential: CredentialRef, *, wait: float = 0, since: When | None = None
    ) -> Link | None:
        """The newest sign-in or confirmation link received at or after ``since``, once.

        None when none came within ``wait`` seconds.  Prefer ``expect_link``
        (the mark on the gateway's clock) or a login's ``link()``, and open it
        with ``browser.open_link``: the URL signs anyone in who has it.
        """
        params = {} if since is None else {"since": iso_time(since)}
        answer = await self._http.poll(
            "/v1/credentials/{id}/link",
            path={"id": _id(credential)},
            wait=wait,
            params=lambda: params,
        )
        if answer.status != 200:
            return None
        log.debug("link handed out")
        return link_from(answer.body)

    def expect_link(
        self, credential: CredentialRef, *, margin: float = MARGIN
    ) -> contextlib.AbstractAsyncContextManager[PendingLink]:
        """Mark now, before the agent makes the site mail a link; only a later link is taken.

        ``async with gate.expect_link(cred) as pending:`` click "Email me a
        link"; then ``link = await pending`` (or ``pending.link(wait=...)``).
        """
        return self._expect(
            credential, margin, lambda info, mark: PendingLink(self, info, since=mark)
        )

    @contextlib.asynccontextmanager
    async def _expect(
        self, credential: CredentialRef, margin: float, make: Callable[[Credential, float], _P]
    ) -> AsyncIterator[_P]:
        info = await self.credential(credential)
        mark = self.clock.now() - max(0.0, margin)
        log.debug("expecting what is received from %s on", iso_time(mark)[:23] + "Z")
        yield make(info, mark)

    # -- logins ---------------------------------------------------------------------------

    def login(self, credential: CredentialRef, *, ttl: int = 300, wait: float = 0) -> LoginBlock:
        """``async with gate.login(cred) as login:``: sign in with the account to yourself.

        Opens a login on entering (``LoginInProgress`` while another is open,
        unless ``wait`` seconds let this one queue behind it), and finishes it
        on leaving: ``succeeded`` on a clean exit, ``failed`` on an exception,
        untouched when the block finished it.  ``ttl`` (1-900 s) bounds the
        login: the gateway finishes it as ``failed`` after that.  See ``logins``.
        """
        return LoginBlock(lambda: self.open_login(credential, ttl=ttl, wait=wait))

    async def open_login(
        self, credential: CredentialRef, *, ttl: int = 300, wait: float = 0
    ) -> Login:
        """Open a login and return it; the caller finishes it (``login()`` does that for you).

        Waits longer than 300 s are asked again after each 409.  The request
        is never repeated after a broken connection once it may have arrived
        (see ``transport``): ``ConnectionFailed(maybe_processed=True)`` then.
        """
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            chunk = min(max(0.0, deadline - time.monotonic()), MAX_WAIT)
            try:
                answer = await self._http.request(
                    "POST",
                    "/v1/credentials/{id}/logins",
                    path={"id": _id(credential)},
                    body={"ttl": int(ttl), "wait": round(chunk, 3)},
                    repeatable=False,
                    read_timeout=self._http.timeout + chunk + POLL_SLACK,
                )
            except LoginInProgress:
                if deadline - time.monotonic() <= 0:
                    raise
                continue
            login = Login(self._http, answer.body)
            log.debug("login opened")
            return login

    async def get_login(self, login_id: str) -> Login:
        """A login by its id, opened here or by another process (an MCP server, a tool).

        Its ``code()``, ``link()``, ``reject()`` and ``finish()`` work as on the
        ``Login`` that opened it; ``NotFound`` for an unknown or another tenant's id.
        """
        answer = await self._http.request(
            "GET", "/v1/logins/{id}", path={"id": login_id}, repeatable=True
        )
        return Login(self._http, answer.body)

    # -- backup codes -----------------------------------------------------------------------

    async def set_backup_codes(
        self, credential: CredentialRef, codes: list[str] | tuple[str, ...]
    ) -> int:
        """Replace the credential's backup codes (1 to 50); how many are stored."""
        body = await self._call(
            "PUT",
            "/v1/credentials/{id}/backup-codes",
            path={"id": _id(credential)},
            body={"codes": [c.reveal() if isinstance(c, Secret) else c for c in codes]},
        )
        return int(body["remaining"])

    async def backup_codes_left(self, credential: CredentialRef) -> int:
        body = await self._call(
            "GET", "/v1/credentials/{id}/backup-codes", path={"id": _id(credential)}
        )
        return int(body["remaining"])

    async def take_backup_code(self, credential: CredentialRef) -> BackupCode:
        """One backup code, handed out once; ``NoBackupCodes`` when none is left.

        Not repeated after a broken connection: a repeat would use up a
        second code to replace one that may have been handed out already.
        """
        body = await self._call(
            "POST", "/v1/credentials/{id}/backup-codes/take", path={"id": _id(credential)}
        )
        return BackupCode(value=body["code"], remaining=int(body["remaining"]))

    # -- interactions ------------------------------------------------------------------

    async def create_interaction(
        self,
        credential: CredentialRef,
        *,
        prompt: str | None = None,
        kind: Literal["code", "approval"] = "code",
        match: str | None = None,
    ) -> Interaction:
        """Ask a person for the code, or (``kind="approval"``) to approve a sign-in.

        Hand them ``submit_url`` (the webhooks get it too).  ``match`` is the
        number the site's sign-in screen shows, for the person to compare.
        """
        payload: dict[str, Any] = {} if kind == "code" else {"kind": kind}
        if prompt is not None:
            payload["prompt"] = prompt
        if match is not None:
            payload["match"] = match
        body = await self._call(
            "POST",
            "/v1/credentials/{id}/interactions",
            path={"id": _id(credential)},
            body=payload,
        )
        return interaction_from(body)

    async def interaction(self, interaction: InteractionRef, *, wait: float = 0) -> Interaction:
        """The interaction; with ``wait``, as soon as its status leaves ``pending``."""
        answer = await self._http.poll(
            "/v1/interactions/{id}",
            path={"id": _id(interaction)},
            wait=wait,
            done=lambda answer: answer.body.get("status") != "pending",
        )
        return interaction_from(answer.body)

    async def decide(
        self, interaction: InteractionRef, decision: Literal["approved", "denied"]
    ) -> None:
        """Approve or deny an approval with the tenant's key (a person uses ``submit_url``).

        Repeated after a broken connection: a repeat that finds this very
        decision recorded (409) counts as done; another decision raises.
        """
        try:
            await self._call(
                "POST",
                "/v1/interactions/{id}/decision",
                path={"id": _id(interaction)},
                body={"decision": decision},
                repeatable=True,
            )
        except Conflict:
            if (await self.interaction(interaction)).status != decision:
                raise

    async def request_approval(
        self,
        credential: CredentialRef,
        *,
        match: str | None = None,
        prompt: str | None = None,
        wait: float = APPROVAL_WAIT,
        on_submit_url: OnSubmitUrl | None = None,
    ) -> Interaction:
        """Ask a person to approve a sign-in, and wait for the decision.

        Opens an approval (``match``: the number the site shows), hands its
        ``submit_url`` to ``on_submit_url`` (printed when None), and waits up
        to ``wait`` seconds.  Returns the interaction as it ends: ``status``
        ``approved``, ``denied`` or ``expired`` (``pending`` only when
        ``wait`` ran out first); ``.approved`` says whether to go on.
        """
        asked = await self.create_interaction(
            credential, prompt=prompt, kind="approval", match=match
        )
        assert asked.submit_url is not None
        await hand_over(asked.submit_url, on_submit_url, "approve or deny a sign-in")
        decided = await self.interaction(asked, wait=wait)
        log.debug("approval %s", decided.status)
        return decided

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
        answer = await self._http.poll(
            "/v1/interactions/{id}/code", path={"id": _id(interaction)}, wait=wait
        )
        if answer.status != 200:
            return None
        return code_from(answer.body, source="user")

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
