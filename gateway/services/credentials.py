"""Credential sets: one account an agent logs into.

Each credential has its own data key, wrapped by the master key ring; its
password and authenticator secret are sealed with that data key and bound to
the tenant, the credential and the field they belong to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from .. import enrolment, ids, otp
from ..errors import Conflict, Invalid, NotFound, Unavailable, UpstreamFailed
from ..extraction.extractor import compile_custom_pattern
from ..store import credentials as credential_rows
from ..store import signals
from ..store.db import Database
from ..validation import is_e164, is_public_domain_name
from ..vault import Vault
from .audit import SYSTEM, Actor, AuditTrail
from .numbers import BoughtNumber, NumberProvider, ProviderError

log = logging.getLogger("otpgate.credentials")

_UNSET: Any = object()
#: Pictures decoded at once, each on its own thread (one per core of a small host).
IMAGE_DECODERS = 2

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AuthenticatorInfo:
    kind: str
    digits: int
    period: int
    algorithm: str


@dataclass(frozen=True, slots=True)
class Extraction:
    pattern: str | None
    allowed_senders: list[str] | None


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """What the API may show of a credential: never the password or a secret."""

    id: str
    name: str
    username: str | None
    inbox: str
    phone_number: str | None
    has_password: bool
    authenticator: AuthenticatorInfo | None
    created_at: float
    updated_at: float
    #: Whether a code or link nobody signs in for fires ``code.unsolicited``.
    report_unsolicited: bool = True


class CredentialService:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        inbox_domain: str,
        audit: AuditTrail | None = None,
        *,
        routes_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._vault = vault
        self._domain = inbox_domain
        self._audit = audit or AuditTrail(db, enabled=False)
        # Tells the inbound side to drop routes it cached for incoming mail and
        # texts; other replicas hear of it through store.signals.
        self._routes_changed = routes_changed
        # Purchases in flight, each run to its end even if its client leaves.
        self._purchases: set[asyncio.Task[CredentialInfo]] = set()
        # Slots for decoding pictures, each held until its thread ends.
        self._decoders = asyncio.Semaphore(IMAGE_DECODERS)

    def _info(self, row: Any) -> CredentialInfo:
        auth = (
            None
            if row.kind is None
            else AuthenticatorInfo(row.kind, row.digits, row.period, row.algorithm)
        )
        return CredentialInfo(
            id=row.id,
            name=row.name,
            username=row.username,
            inbox=f"{row.inbox}@{self._domain}",
            phone_number=row.phone_number,
            has_password=bool(row.has_password),
            authenticator=auth,
            created_at=row.created_at,
            updated_at=row.updated_at,
            report_unsolicited=bool(row.report_unsolicited),
        )

    async def create(
        self,
        tenant_id: str,
        *,
        name: str,
        username: str | None,
        password: str | None,
        actor: Actor = SYSTEM,
    ) -> CredentialInfo:
        values, _ = self._new_credential(tenant_id, name=name, username=username, password=password)
        cred_id = values["id"]
        async with self._db.write() as conn:
            await credential_rows.insert_credential(conn, **values)
            row = await credential_rows.get_public(conn, tenant_id, cred_id)
            await self._audit.append(
                conn, tenant_id, actor, "credential.created", credential_id=cred_id
            )
        log.info("credential created", extra={"tenant": tenant_id, "credential": cred_id})
        return self._info(row)

    def _new_credential(
        self, tenant_id: str, *, name: str, username: str | None, password: str | None
    ) -> tuple[dict[str, Any], bytes]:
        """A new credential's row (its data key wrapped, its password sealed) and data key."""
        cred_id = ids.new_id(ids.CREDENTIAL)
        dek = self._vault.new_data_key()
        wrapped = self._vault.wrap_data_key(dek, tenant_id=tenant_id, credential_id=cred_id)
        sealed = None
        if password is not None:
            sealed = self._vault.seal_field(
                dek, password.encode(), tenant_id=tenant_id, credential_id=cred_id, field="password"
            )
        at = ids.now()
        row = {
            "id": cred_id,
            "tenant_id": tenant_id,
            "name": name,
            "username": username,
            "inbox": ids.new_inbox_local(name),
            "phone_number": None,
            "data_key": wrapped,
            "key_version": self._vault.wrapped_version(wrapped),
            "password": sealed,
            "created_at": at,
            "updated_at": at,
        }
        return row, dek

    async def get(self, tenant_id: str, cred_id: str) -> CredentialInfo:
        async with self._db.read() as conn:
            row = await credential_rows.get_public(conn, tenant_id, cred_id)
        if row is None:
            raise _not_found()
        return self._info(row)

    async def list(
        self,
        tenant_id: str,
        *,
        limit: int = 100,
        after: str | None = None,
        only: frozenset[str] | None = None,
    ) -> list[CredentialInfo]:
        """A page of the tenant's credentials (of those in *only*, when given), by id."""
        async with self._db.read() as conn:
            rows = await credential_rows.list_public(
                conn, tenant_id, limit=limit, after=after, only=only
            )
        return [self._info(r) for r in rows]

    async def update(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        name: str = _UNSET,
        username: str | None = _UNSET,
        password: str | None = _UNSET,
        report_unsolicited: bool = _UNSET,
        actor: Actor = SYSTEM,
    ) -> CredentialInfo:
        values: dict[str, Any] = {}
        if name is not _UNSET:
            values["name"] = name
        if username is not _UNSET:
            values["username"] = username
        if report_unsolicited is not _UNSET:
            values["report_unsolicited"] = bool(report_unsolicited)
        async with self._db.write() as conn:
            if password is not _UNSET:
                sealed = await credential_rows.get_sealed(conn, tenant_id, cred_id)
                if sealed is None:
                    raise _not_found()
                values["password"] = (
                    None
                    if password is None
                    else self._seal(tenant_id, cred_id, sealed[0], "password", password.encode())
                )
            values["updated_at"] = ids.now()
            if not await credential_rows.update_credential(conn, tenant_id, cred_id, **values):
                raise _not_found()
            if password is not _UNSET:
                await self._audit.append(
                    conn, tenant_id, actor, "password.set", credential_id=cred_id
                )
            if report_unsolicited is not _UNSET:
                await signals.routes_changed(conn)  # routes carry the setting
            row = await credential_rows.get_public(conn, tenant_id, cred_id)
        if report_unsolicited is not _UNSET:
            self._routes_changed()
        return self._info(row)

    async def delete(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        release_number: bool = False,
        numbers: NumberProvider | None = None,
        actor: Actor = SYSTEM,
    ) -> None:
        """Delete a credential; with *release_number*, first give its bought number back.

        When the release fails, nothing is deleted, so the call can be repeated.
        """
        if release_number:
            await self._release(tenant_id, cred_id, numbers)
        async with self._db.write() as conn:
            phone = await credential_rows.get_phone(conn, tenant_id, cred_id)
            if not await credential_rows.delete_credential(conn, tenant_id, cred_id):
                raise _not_found()
            await self._audit.append(
                conn, tenant_id, actor, "credential.deleted", credential_id=cred_id
            )
            await signals.routes_changed(conn)
        self._routes_changed()
        log.info("credential deleted", extra={"tenant": tenant_id, "credential": cred_id})
        if not release_number and phone is not None and phone.phone_sid is not None:
            log.info(
                "the credential's number stays bought at the provider",
                extra={"credential": cred_id, "sid": phone.phone_sid},
            )

    async def password(self, tenant_id: str, cred_id: str, *, actor: Actor = SYSTEM) -> str | None:
        """The credential's password (None when it has none); the read is audited first."""
        async with self._db.read() as conn:
            sealed = await credential_rows.get_sealed(conn, tenant_id, cred_id)
        if sealed is None:
            raise _not_found()
        wrapped, blob = sealed
        if blob is None:
            return None
        password = self._vault.open_field_under(
            wrapped, blob, tenant_id=tenant_id, credential_id=cred_id, field="password"
        ).decode()
        await self._audit.record(tenant_id, actor, "password.read", credential_id=cred_id)
        return password

    async def set_authenticator(
        self, tenant_id: str, cred_id: str, auth: otp.Authenticator, *, actor: Actor = SYSTEM
    ) -> AuthenticatorInfo:
        _check_storable(auth)
        async with self._db.write() as conn:
            sealed = await credential_rows.get_sealed(conn, tenant_id, cred_id)
            if sealed is None:
                raise _not_found()
            secret = self._seal(tenant_id, cred_id, sealed[0], "authenticator", auth.secret)
            await credential_rows.upsert_authenticator(
                conn, **_authenticator_row(tenant_id, cred_id, auth, secret)
            )
            await credential_rows.update_credential(conn, tenant_id, cred_id, updated_at=ids.now())
            await self._audit.append(
                conn, tenant_id, actor, "authenticator.set", credential_id=cred_id
            )
        log.info(
            "authenticator set",
            extra={"tenant": tenant_id, "credential": cred_id, "kind": auth.kind},
        )
        return AuthenticatorInfo(auth.kind, auth.digits, auth.period, auth.algorithm)

    async def delete_authenticator(
        self, tenant_id: str, cred_id: str, *, actor: Actor = SYSTEM
    ) -> None:
        async with self._db.write() as conn:
            if await credential_rows.get_sealed(conn, tenant_id, cred_id) is None:
                raise _not_found()
            if not await credential_rows.delete_authenticator(conn, tenant_id, cred_id):
                raise NotFound("this credential has no authenticator")
            await self._audit.append(
                conn, tenant_id, actor, "authenticator.removed", credential_id=cred_id
            )

    async def authenticator_in_image(self, image: bytes) -> otp.Authenticator:
        """The authenticator of the enrolment QR code in a PNG or JPEG picture (decoded aside)."""
        return await self._decoded(enrolment.authenticator_in_image, image)

    async def accounts_in_image(self, image: bytes) -> Sequence[enrolment.ImportedAccount]:
        """The accounts of the authenticator app's export QR code in a picture (decoded aside)."""
        return await self._decoded(enrolment.accounts_in_image, image)

    async def _decoded(self, decode: Callable[[bytes], T], image: bytes) -> T:
        """Run *decode* on a thread, at most IMAGE_DECODERS at once.

        Decoding a large picture takes a core for a fraction of a second; on
        the event loop it would hold up every other request. A slot is given
        back when its thread ends, even if the client left before, so the
        bound holds.
        """
        await self._decoders.acquire()
        try:
            work = asyncio.ensure_future(asyncio.to_thread(decode, image))
        except BaseException:
            self._decoders.release()
            raise
        work.add_done_callback(self._decoder_done)
        return await asyncio.shield(work)

    def _decoder_done(self, work: asyncio.Future[Any]) -> None:
        self._decoders.release()
        if not work.cancelled():
            work.exception()  # retrieved: the caller may have left before it ended

    async def import_accounts(
        self,
        tenant_id: str,
        accounts: Sequence[enrolment.ImportedAccount],
        *,
        actor: Actor = SYSTEM,
    ) -> Sequence[CredentialInfo]:
        """Create one credential with its authenticator per account, all or none.

        The accounts were validated when parsed; they are stored in one
        transaction, so a failure leaves none of them behind.
        """
        if not 0 < len(accounts) <= enrolment.MAX_ACCOUNTS:
            raise Invalid(f"an import creates 1 to {enrolment.MAX_ACCOUNTS} credentials")
        rows = []
        for account in accounts:
            auth = account.authenticator
            _check_storable(auth)
            values, dek = self._new_credential(
                tenant_id, name=account.name, username=None, password=None
            )
            secret = self._vault.seal_field(
                dek,
                auth.secret,
                tenant_id=tenant_id,
                credential_id=values["id"],
                field="authenticator",
            )
            rows.append((values, _authenticator_row(tenant_id, values["id"], auth, secret)))
        async with self._db.write() as conn:
            for credential, authenticator in rows:
                await credential_rows.insert_credential(conn, **credential)
                await credential_rows.upsert_authenticator(conn, **authenticator)
                for action in ("credential.created", "authenticator.set"):
                    await self._audit.append(
                        conn, tenant_id, actor, action, credential_id=credential["id"]
                    )
            created = [
                await credential_rows.get_public(conn, tenant_id, credential["id"])
                for credential, _ in rows
            ]
        log.info("credentials imported", extra={"tenant": tenant_id, "count": len(created)})
        return [self._info(row) for row in created]

    async def set_phone(
        self, tenant_id: str, cred_id: str, phone: str | None, *, actor: Actor = SYSTEM
    ) -> CredentialInfo:
        if phone is not None and not is_e164(phone):
            raise Invalid("phone_number must be in E.164 form, such as +14155550100")
        try:
            async with self._db.write() as conn:
                if phone is not None:
                    owner = await credential_rows.phone_owner(conn, phone)
                    if owner is not None and owner != cred_id:
                        raise Conflict("this phone number already belongs to another credential")
                if not await credential_rows.update_credential(
                    conn,
                    tenant_id,
                    cred_id,
                    phone_number=phone,
                    phone_sid=credential_rows.sid_if_same_number(phone),
                    updated_at=ids.now(),
                ):
                    raise _not_found()
                await self._audit.append(
                    conn,
                    tenant_id,
                    actor,
                    "phone.set" if phone is not None else "phone.removed",
                    credential_id=cred_id,
                )
                await signals.routes_changed(conn)
                row = await credential_rows.get_public(conn, tenant_id, cred_id)
        except IntegrityError:
            # Another request took the number between our check and our write.
            raise Conflict("this phone number already belongs to another credential") from None
        self._routes_changed()
        return self._info(row)

    async def delete_phone(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        release_number: bool = False,
        numbers: NumberProvider | None = None,
        actor: Actor = SYSTEM,
    ) -> None:
        """Unassign the number; with *release_number*, first give it back to the provider.

        Without it, a bought number stays bought (and billed) at the provider.
        """
        if release_number:
            await self._release(tenant_id, cred_id, numbers)
        else:
            async with self._db.read() as conn:
                phone = await credential_rows.get_phone(conn, tenant_id, cred_id)
            if phone is not None and phone.phone_sid is not None:
                log.info(
                    "the unassigned number stays bought at the provider",
                    extra={"credential": cred_id, "sid": phone.phone_sid},
                )
        await self.set_phone(tenant_id, cred_id, None, actor=actor)

    async def provision_phone(
        self,
        tenant_id: str,
        cred_id: str,
        numbers: NumberProvider | None,
        *,
        country: str,
        area_code: str | None,
        sms_url: str,
        actor: Actor = SYSTEM,
    ) -> CredentialInfo:
        """Buy an SMS-capable number whose texts go to *sms_url* and give it to the credential.

        409 when it has a number already.  The purchase and the write that
        records it run to their end even if the caller goes away (a number
        bought but not recorded would be billed and lost); when the write
        fails, the number is released again.
        """
        async with self._db.read() as conn:
            phone = await credential_rows.get_phone(conn, tenant_id, cred_id)
        if phone is None:
            raise _not_found()
        if phone.phone_number is not None:
            raise _has_number()
        provider = _provider(numbers)
        task = asyncio.create_task(
            self._buy_and_store(tenant_id, cred_id, provider, country, area_code, sms_url, actor)
        )
        self._purchases.add(task)
        task.add_done_callback(_purchase_done(self._purchases))
        return await asyncio.shield(task)

    async def _buy_and_store(
        self,
        tenant_id: str,
        cred_id: str,
        provider: NumberProvider,
        country: str,
        area_code: str | None,
        sms_url: str,
        actor: Actor,
    ) -> CredentialInfo:
        try:
            bought = await provider.buy(country=country, area_code=area_code, sms_url=sms_url)
        except ProviderError as exc:
            raise UpstreamFailed(f"no number was bought: {exc}") from None
        try:
            info = await self._store_number(tenant_id, cred_id, bought, actor)
        except BaseException:
            await _release_quietly(provider, bought, cred_id)
            raise
        self._routes_changed()
        log.info(
            "phone number provisioned",
            extra={"tenant": tenant_id, "credential": cred_id, "sid": bought.sid},
        )
        return info

    async def _store_number(
        self, tenant_id: str, cred_id: str, bought: BoughtNumber, actor: Actor
    ) -> CredentialInfo:
        if not is_e164(bought.phone_number):
            raise UpstreamFailed("the provider sold a number that is not in E.164 form")
        try:
            async with self._db.write() as conn:
                phone = await credential_rows.get_phone(conn, tenant_id, cred_id)
                if phone is None:
                    raise _not_found()
                if phone.phone_number is not None:
                    raise _has_number()  # another provisioning won the race
                if await credential_rows.phone_owner(conn, bought.phone_number) is not None:
                    raise Conflict("the bought number already belongs to another credential")
                await credential_rows.update_credential(
                    conn,
                    tenant_id,
                    cred_id,
                    phone_number=bought.phone_number,
                    phone_sid=bought.sid,
                    updated_at=ids.now(),
                )
                await self._audit.append(conn, tenant_id, actor, "phone.set", credential_id=cred_id)
                await signals.routes_changed(conn)
                row = await credential_rows.get_public(conn, tenant_id, cred_id)
        except IntegrityError:
            raise Conflict("the bought number already belongs to another credential") from None
        return self._info(row)

    async def _release(self, tenant_id: str, cred_id: str, numbers: NumberProvider | None) -> None:
        """Give the credential's bought number back to the provider (it stays assigned)."""
        async with self._db.read() as conn:
            phone = await credential_rows.get_phone(conn, tenant_id, cred_id)
        if phone is None:
            raise _not_found()
        if phone.phone_number is None:
            raise Invalid("this credential has no phone number to release")
        if phone.phone_sid is None:
            raise Invalid(
                "this credential's number was not bought by the gateway, so it cannot "
                "release it; leave out release_number"
            )
        provider = _provider(numbers)
        try:
            await provider.release(phone.phone_sid)
        except ProviderError as exc:
            raise UpstreamFailed(
                f"the number was not released and nothing was changed: {exc}"
            ) from None
        log.info("phone number released", extra={"credential": cred_id, "sid": phone.phone_sid})

    async def set_extraction(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        pattern: str | None,
        allowed_senders: Sequence[str] | None,
    ) -> Extraction:
        """Set the credential's own code pattern and allowed sender domains (None: default)."""
        if pattern is not None:
            compile_custom_pattern(pattern)  # raises Invalid with the reason
        senders = None
        if allowed_senders is not None:
            senders = sorted({_sender_domain(d) for d in allowed_senders})
            if not senders:
                raise Invalid("allowed_senders needs at least one domain, or null for any")
        async with self._db.write() as conn:
            if not await credential_rows.update_credential(
                conn,
                tenant_id,
                cred_id,
                extraction_pattern=pattern,
                allowed_senders=credential_rows.encode_senders(senders),
                updated_at=ids.now(),
            ):
                raise _not_found()
            await signals.routes_changed(conn)
        self._routes_changed()
        return Extraction(pattern, senders)

    async def extraction(self, tenant_id: str, cred_id: str) -> Extraction:
        async with self._db.read() as conn:
            row = await credential_rows.get_extraction(conn, tenant_id, cred_id)
        if row is None:
            raise _not_found()
        senders = credential_rows.decode_senders(row[1])
        return Extraction(row[0], None if senders is None else list(senders))

    def _seal(
        self, tenant_id: str, cred_id: str, wrapped: bytes, field: str, value: bytes
    ) -> bytes:
        return self._vault.seal_field_under(
            wrapped, value, tenant_id=tenant_id, credential_id=cred_id, field=field
        )

    async def search(
        self,
        tenant_id: str,
        *,
        text: str | None = None,
        offset: int = 0,
        limit: int = 25,
        only: Collection[str] | None = None,
    ) -> Sequence[CredentialInfo]:
        """The tenant's credentials by name, those whose name, username or inbox holds *text*."""
        async with self._db.read() as conn:
            rows = await credential_rows.search_public(
                conn, tenant_id, text=text, offset=offset, limit=limit, only=only
            )
        return [self._info(r) for r in rows]

    async def names(self, tenant_id: str, cred_ids: Sequence[str]) -> dict[str, str]:
        """The names of the tenant's credentials among *cred_ids* (unknown ids left out)."""
        async with self._db.read() as conn:
            return await credential_rows.names(conn, tenant_id, cred_ids)


#: The store's limits on what an otp.Authenticator may otherwise hold.
_MAX_STORED_COUNTER = credential_rows.MAX_HOTP_COUNTER  # a signed 64-bit column
_MAX_STORED_NAME = 200


def _check_storable(auth: otp.Authenticator) -> None:
    """422, not a database error, for an authenticator the columns cannot hold."""
    if auth.counter > _MAX_STORED_COUNTER:
        raise Invalid("counter must be below 2**63")
    for what, value in (("issuer", auth.issuer), ("label", auth.label)):
        if value is not None and len(value) > _MAX_STORED_NAME:
            raise Invalid(f"the {what} is longer than {_MAX_STORED_NAME} characters")
        if value is not None and "\x00" in value:
            raise Invalid(f"the {what} holds a NUL character")


def _authenticator_row(
    tenant_id: str, cred_id: str, auth: otp.Authenticator, sealed_secret: bytes
) -> dict[str, Any]:
    return {
        "credential_id": cred_id,
        "tenant_id": tenant_id,
        "kind": auth.kind,
        "digits": auth.digits,
        "period": auth.period,
        "algorithm": auth.algorithm,
        "counter": auth.counter,
        "secret": sealed_secret,
        "issuer": auth.issuer,
        "label": auth.label,
        "created_at": ids.now(),
    }


def _sender_domain(value: str) -> str:
    domain = value.strip().lower().rstrip(".")
    if not is_public_domain_name(domain):
        raise Invalid("each allowed sender must be a domain name, such as example.com")
    return domain


def _not_found() -> NotFound:
    return NotFound("no such credential")


def _has_number() -> Conflict:
    return Conflict("this credential already has a phone number; DELETE its phone first")


def _provider(numbers: NumberProvider | None) -> NumberProvider:
    if numbers is None:
        raise Unavailable(
            "Twilio is not configured: set OTPGATE_TWILIO_ACCOUNT_SID and "
            "OTPGATE_TWILIO_AUTH_TOKEN to buy and release numbers",
            code="twilio_not_configured",
        )
    return numbers


async def _release_quietly(provider: NumberProvider, bought: BoughtNumber, cred_id: str) -> None:
    """Best effort: give back a number that could not be recorded; log when that fails."""
    try:
        await provider.release(bought.sid)
    except Exception as exc:
        log.error(
            "a bought number could not be recorded nor released; release it at the provider",
            extra={"credential": cred_id, "sid": bought.sid, "error": str(exc)},
        )
    else:
        log.warning(
            "a bought number could not be recorded and was released",
            extra={"credential": cred_id, "sid": bought.sid},
        )


def _purchase_done(
    pending: set[asyncio.Task[CredentialInfo]],
) -> Callable[[asyncio.Task[CredentialInfo]], None]:
    def done(task: asyncio.Task[CredentialInfo]) -> None:
        pending.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the caller may have left before it ended

    return done
