"""Android phones as a second route for texts: SMS Gateway for Android devices.

A device (its ``deviceId``) and optionally one of its SIM slots belong to
one credential; each text the phone receives is posted to the Android
adapter's webhook (:mod:`sms.android`), which finds the mapping here by the
device and the SIM the text arrived on, checks the signature with the
mapping's key and hands the text to :class:`~gateway.services.sms.SmsService`.
The device's signing key is sealed with that credential's data key.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from .. import ids
from ..errors import Conflict, Invalid, NotFound
from ..store import credentials as credential_rows
from ..store import inbound as inbound_rows
from ..store import sms as sms_rows
from ..store.db import Database
from ..vault import Vault
from .inbound import Route, route_from_row

log = logging.getLogger("otpgate.sms")

#: Devices (or SIM slots) one credential may have.
MAX_DEVICES = 10
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: str
    credential_id: str
    device_id: str
    sim_number: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class DeviceRoute:
    """One SIM mapping of a device: where its texts go and the key that signs them."""

    sim_number: int | None
    signing_key: bytes
    route: Route

    def __repr__(self) -> str:
        return f"DeviceRoute(sim_number={self.sim_number!r}, route={self.route!r})"


class AndroidDevices:
    """Map devices (or their SIM slots) to credentials, and find the mapping of a text."""

    def __init__(
        self, db: Database, vault: Vault, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._vault = vault
        self._clock = clock

    async def device_routes(self, device_id: str) -> list[DeviceRoute]:
        """Every SIM mapping of *device_id*, with its signing key opened."""
        if not _DEVICE_ID.match(device_id):
            return []
        async with self._db.read() as conn:
            rows = await inbound_rows.devices(conn, device_id)
            found = []
            for row in rows:
                found.append((row, await inbound_rows.forward_ids(conn, row.id)))
        out = []
        for row, forwards in found:
            key = self._vault.open_field_under(
                row.data_key,
                row.signing_key,
                tenant_id=row.tenant_id,
                credential_id=row.id,
                field=f"device:{device_id}:{row.sim_number}",
            )
            out.append(DeviceRoute(row.sim_number, key, route_from_row(row, forwards)))
        return out

    async def add_device(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        device_id: str,
        sim_number: int | None,
        signing_key: str | None,
    ) -> tuple[DeviceInfo, str]:
        """Map a device (or one of its SIM slots) to a credential; the info and the key."""
        if not _DEVICE_ID.match(device_id):
            raise Invalid("device_id must be 1 to 64 letters, digits or . _ : -")
        if sim_number is not None and not 1 <= sim_number <= 8:
            raise Invalid("sim_number must be from 1 to 8")
        if signing_key is None:
            signing_key = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()
        elif not 16 <= len(signing_key) <= 256 or not signing_key.isprintable():
            raise Invalid("signing_key must be 16 to 256 printable characters")
        row_id = ids.new_id(ids.SMS_DEVICE)
        at = self._clock()
        try:
            async with self._db.write() as conn:
                sealed = await credential_rows.get_sealed(conn, tenant_id, cred_id)
                if sealed is None:
                    raise NotFound("no such credential", code="not_found")
                if await sms_rows.count_devices(conn, cred_id) >= MAX_DEVICES:
                    raise Conflict(f"a credential has at most {MAX_DEVICES} devices")
                if await sms_rows.mapping_taken(conn, device_id, sim_number):
                    raise Conflict("this device (and SIM) already belongs to a credential")
                await sms_rows.insert_device(
                    conn,
                    id=row_id,
                    tenant_id=tenant_id,
                    credential_id=cred_id,
                    device_id=device_id,
                    sim_number=sim_number,
                    signing_key=self._vault.seal_field_under(
                        sealed[0],
                        signing_key.encode(),
                        tenant_id=tenant_id,
                        credential_id=cred_id,
                        field=f"device:{device_id}:{sim_number}",
                    ),
                    created_at=at,
                )
        except IntegrityError:
            raise Conflict("this device (and SIM) already belongs to a credential") from None
        log.info("sms device mapped", extra={"tenant": tenant_id, "credential": cred_id})
        return DeviceInfo(row_id, cred_id, device_id, sim_number, at), signing_key

    async def list_devices(self, tenant_id: str, cred_id: str) -> list[DeviceInfo]:
        async with self._db.read() as conn:
            if await credential_rows.get_sealed(conn, tenant_id, cred_id) is None:
                raise NotFound("no such credential", code="not_found")
            rows = await sms_rows.list_devices(conn, tenant_id, cred_id)
        return [_device(r) for r in rows]

    async def remove_device(self, tenant_id: str, cred_id: str, device_row: str) -> None:
        async with self._db.write() as conn:
            if not await sms_rows.delete_device(conn, tenant_id, cred_id, device_row):
                raise NotFound("no such device for this credential", code="not_found")


def pick_route(mappings: Sequence[DeviceRoute], sim_number: int | None) -> DeviceRoute | None:
    """The mapping for the SIM a text arrived on: an exact slot first, else the whole device."""
    for m in mappings:
        if sim_number is not None and m.sim_number == sim_number:
            return m
    for m in mappings:
        if m.sim_number is None:
            return m
    return None


def _device(row: Any) -> DeviceInfo:
    return DeviceInfo(row.id, row.credential_id, row.device_id, row.sim_number, row.created_at)
