"""``Client``: the same API for code that does not use asyncio.

There is one implementation of the logic, ``AsyncClient``; ``Client`` runs it
on a small event loop of its own, in a daemon thread, and waits for each
call.  That keeps retries, the server clock, correlation and errors
identical in both, and it works from anywhere, even from inside another
running event loop (a notebook), which ``asyncio.run`` per call would not.
Each ``Client`` owns one thread; ``close()`` (or ``with``) stops it.  A call
interrupted by Ctrl-C cancels its request on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

from .aio import (
    APPROVAL_WAIT,
    DEFAULT_WAIT,
    MARGIN,
    AsyncClient,
    CredentialRef,
    InteractionRef,
    OnSubmitUrl,
    When,
)
from .logins import Login, LoginBlock, Outcome
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
)
from .pending import PendingCode, PendingLink
from .transport import Retry

T = TypeVar("T")


class _Loop:
    """An event loop running in a daemon thread, for one ``Client``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="otpgate-client", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C or the like: stop the request too
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Client:
    """The gateway's API, blocking.  Same arguments and methods as ``AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret,
        *,
        retry: Retry | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._loop = _Loop()
        self._async = AsyncClient(
            base_url, api_key, retry=retry, timeout=timeout, connect_timeout=connect_timeout
        )

    def __repr__(self) -> str:
        return f"Client({self._async.base_url!r}, api_key=<hidden>)"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.loop.is_closed():
            self._loop.run(self._async.close())
        self._loop.stop()

    @property
    def base_url(self) -> str:
        return self._async.base_url

    def server_now(self) -> datetime:
        return self._async.server_now()

    def health(self) -> bool:
        return self._loop.run(self._async.health())

    def create_tenant(self, name: str) -> Tenant:
        return self._loop.run(self._async.create_tenant(name))

    def create_credential(
        self, name: str, *, username: str | None = None, password: str | Secret | None = None
    ) -> Credential:
        return self._loop.run(
            self._async.create_credential(name, username=username, password=password)
        )

    def credential(self, credential: CredentialRef) -> Credential:
        return self._loop.run(self._async.credential(credential))

    def credentials(self) -> list[Credential]:
        return self._loop.run(self._async.credentials())

    def update_credential(
        self,
        credential: CredentialRef,
        *,
        name: str | None = None,
        username: str | None = None,
        password: str | Secret | None = None,
    ) -> Credential:
        return self._loop.run(
            self._async.update_credential(
                credential, name=name, username=username, password=password
            )
        )

    def delete_credential(self, credential: CredentialRef) -> None:
        self._loop.run(self._async.delete_credential(credential))

    def password(self, credential: CredentialRef) -> Secret:
        return self._loop.run(self._async.password(credential))

    def set_authenticator(
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
        return self._loop.run(
            self._async.set_authenticator(
                credential,
                otpauth_uri=otpauth_uri,
                secret=secret,
                kind=kind,
                digits=digits,
                period=period,
                algorithm=algorithm,
                counter=counter,
            )
        )

    def delete_authenticator(self, credential: CredentialRef) -> None:
        self._loop.run(self._async.delete_authenticator(credential))

    def set_phone(self, credential: CredentialRef, phone_number: str) -> Credential:
        return self._loop.run(self._async.set_phone(credential, phone_number))

    def delete_phone(self, credential: CredentialRef) -> None:
        self._loop.run(self._async.delete_phone(credential))

    def code(
        self,
        credential: CredentialRef,
        *,
        wait: float = 0,
        since: When | None = None,
        min_validity: int = 0,
        source: str | None = None,
    ) -> Code | None:
        return self._loop.run(
            self._async.code(
                credential, wait=wait, since=since, min_validity=min_validity, source=source
            )
        )

    @contextlib.contextmanager
    def expect_code(
        self, credential: CredentialRef, *, source: str | None = None, margin: float = MARGIN
    ) -> Iterator[SyncPendingCode]:
        """``with gate.expect_code(cred) as pending:`` click "Sign in"; then ``pending.code()``."""
        manager = self._async.expect_code(credential, source=source, margin=margin)
        pending = self._loop.run(manager.__aenter__())
        try:
            yield SyncPendingCode(self._loop, pending)
        finally:
            self._loop.run(manager.__aexit__(None, None, None))

    def link(
        self, credential: CredentialRef, *, wait: float = 0, since: When | None = None
    ) -> Link | None:
        return self._loop.run(self._async.link(credential, wait=wait, since=since))

    @contextlib.contextmanager
    def expect_link(
        self, credential: CredentialRef, *, margin: float = MARGIN
    ) -> Iterator[SyncPendingLink]:
        """``with gate.expect_link(cred) as pending:`` ask for the mail; then ``pending.link()``."""
        manager = self._async.expect_link(credential, margin=margin)
        pending = self._loop.run(manager.__aenter__())
        try:
            yield SyncPendingLink(self._loop, pending)
        finally:
            self._loop.run(manager.__aexit__(None, None, None))

    def login(
        self, credential: CredentialRef, *, ttl: int = 300, wait: float = 0
    ) -> SyncLoginBlock:
        """``with gate.login(cred) as login:``: as ``AsyncClient.login``, blocking."""
        return SyncLoginBlock(self._loop, self._async.login(credential, ttl=ttl, wait=wait))

    def open_login(
        self, credential: CredentialRef, *, ttl: int = 300, wait: float = 0
    ) -> SyncLogin:
        login = self._loop.run(self._async.open_login(credential, ttl=ttl, wait=wait))
        return SyncLogin(self._loop, login)

    def get_login(self, login_id: str) -> SyncLogin:
        return SyncLogin(self._loop, self._loop.run(self._async.get_login(login_id)))

    def set_backup_codes(
        self, credential: CredentialRef, codes: list[str] | tuple[str, ...]
    ) -> int:
        return self._loop.run(self._async.set_backup_codes(credential, codes))

    def backup_codes_left(self, credential: CredentialRef) -> int:
        return self._loop.run(self._async.backup_codes_left(credential))

    def take_backup_code(self, credential: CredentialRef) -> BackupCode:
        return self._loop.run(self._async.take_backup_code(credential))

    def create_interaction(
        self,
        credential: CredentialRef,
        *,
        prompt: str | None = None,
        kind: Literal["code", "approval"] = "code",
        match: str | None = None,
    ) -> Interaction:
        return self._loop.run(
            self._async.create_interaction(credential, prompt=prompt, kind=kind, match=match)
        )

    def interaction(self, interaction: InteractionRef, *, wait: float = 0) -> Interaction:
        return self._loop.run(self._async.interaction(interaction, wait=wait))

    def decide(self, interaction: InteractionRef, decision: Literal["approved", "denied"]) -> None:
        self._loop.run(self._async.decide(interaction, decision))

    def request_approval(
        self,
        credential: CredentialRef,
        *,
        match: str | None = None,
        prompt: str | None = None,
        wait: float = APPROVAL_WAIT,
        on_submit_url: OnSubmitUrl | None = None,
    ) -> Interaction:
        """As ``AsyncClient.request_approval``; ``on_submit_url`` runs on the client's thread."""
        return self._loop.run(
            self._async.request_approval(
                credential, match=match, prompt=prompt, wait=wait, on_submit_url=on_submit_url
            )
        )

    def submit_code(self, interaction: InteractionRef, code: str | Secret) -> None:
        self._loop.run(self._async.submit_code(interaction, code))

    def interaction_code(self, interaction: InteractionRef, *, wait: float = 0) -> Code | None:
        return self._loop.run(self._async.interaction_code(interaction, wait=wait))

    def create_webhook(self, url: str, events: list[str] | tuple[str, ...]) -> Webhook:
        return self._loop.run(self._async.create_webhook(url, events))

    def webhooks(self) -> list[Webhook]:
        return self._loop.run(self._async.webhooks())

    def delete_webhook(self, webhook: Webhook | str) -> None:
        self._loop.run(self._async.delete_webhook(webhook))


class SyncPendingCode:
    """``PendingCode`` for ``Client``: ``code()`` and ``reject()`` block."""

    def __init__(self, loop: _Loop, pending: PendingCode) -> None:
        self._loop = loop
        self._pending = pending

    def __repr__(self) -> str:
        return repr(self._pending)

    @property
    def credential(self) -> Credential:
        return self._pending.credential

    @property
    def since(self) -> datetime:
        return self._pending.since

    def code(self, *, wait: float = DEFAULT_WAIT, min_validity: int = 0) -> Code:
        return self._loop.run(self._pending.code(wait=wait, min_validity=min_validity))

    def reject(self) -> None:
        self._loop.run(self._pending.reject())


class SyncPendingLink:
    """``PendingLink`` for ``Client``: ``link()`` and ``reject()`` block."""

    def __init__(self, loop: _Loop, pending: PendingLink) -> None:
        self._loop = loop
        self._pending = pending

    def __repr__(self) -> str:
        return repr(self._pending)

    @property
    def credential(self) -> Credential:
        return self._pending.credential

    @property
    def since(self) -> datetime:
        return self._pending.since

    def link(self, *, wait: float = DEFAULT_WAIT) -> Link:
        return self._loop.run(self._pending.link(wait=wait))

    def reject(self) -> None:
        self._loop.run(self._pending.reject())


class SyncLogin:
    """``Login`` for ``Client``: the same attributes; ``code()``, ``link()``... block."""

    def __init__(self, loop: _Loop, login: Login) -> None:
        self._loop = loop
        #: The asynchronous ``Login`` underneath (its attributes are current).
        self.login = login

    def __repr__(self) -> str:
        return repr(self.login)

    @property
    def id(self) -> str:
        return self.login.id

    @property
    def credential_id(self) -> str:
        return self.login.credential_id

    @property
    def status(self) -> str:
        return self.login.status

    @property
    def finished(self) -> bool:
        return self.login.finished

    @property
    def expires_at(self) -> datetime | None:
        return self.login.expires_at

    def code(self, *, wait: float = DEFAULT_WAIT, min_validity: float = 0) -> Code:
        return self._loop.run(self.login.code(wait=wait, min_validity=min_validity))

    def link(self, *, wait: float = DEFAULT_WAIT) -> Link:
        return self._loop.run(self.login.link(wait=wait))

    def reject(self) -> None:
        self._loop.run(self.login.reject())

    def finish(self, outcome: Outcome) -> None:
        self._loop.run(self.login.finish(outcome))

    def refresh(self) -> SyncLogin:
        self._loop.run(self.login.refresh())
        return self


class SyncLoginBlock:
    """``with gate.login(cred) as login:``: ``LoginBlock``'s rules, in the caller's thread."""

    def __init__(self, loop: _Loop, block: LoginBlock) -> None:
        self._loop = loop
        self._block = block

    def __enter__(self) -> SyncLogin:
        return SyncLogin(self._loop, self._loop.run(self._block.__aenter__()))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._loop.run(self._block.__aexit__(exc_type, exc, tb))
