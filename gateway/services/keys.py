"""Master key rotation and retirement.

``rotate`` adds a new master key version to the ring (every replica sharing
the ring file picks it up on first use) and then rewraps every credential's
and webhook endpoint's data key under it, in small transactions, while the gateway keeps serving:
each swap is a compare-and-set on the old wrapped key, so a concurrent change
is never overwritten.  Field ciphertexts never change: only the data keys are
rewrapped.  ``retire`` refuses to remove a version that still wraps a key.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..errors import Conflict
from ..store import datakeys as datakey_rows
from ..store.db import Database
from ..vault import KeyRing, Vault

log = logging.getLogger("otpgate.keys")

_BATCH = 200


@dataclass(frozen=True, slots=True)
class RotationResult:
    version: int
    rewrapped: int


async def rotate(db: Database, keyring: KeyRing, *, add_version: bool = True) -> RotationResult:
    """Make a new master version active (unless told not to) and rewrap every data key."""
    version = keyring.add_version() if add_version else keyring.active_version
    vault = Vault(keyring)
    rewrapped = 0
    for table in datakey_rows.KEYED:
        while True:
            async with db.read() as conn:
                batch = await datakey_rows.not_at(conn, table, version, limit=_BATCH)
            if not batch:
                break
            async with db.write() as conn:
                for row_id, tenant_id, wrapped, _old_version in batch:
                    new = vault.rewrap(wrapped, tenant_id=tenant_id, credential_id=row_id)
                    if await datakey_rows.replace(
                        conn, table, row_id, old=wrapped, new=new, version=version
                    ):
                        rewrapped += 1
            # SQLite work runs on the event loop: let requests in between batches.
            await asyncio.sleep(0.001)
    log.info("master key rotated", extra={"version": version, "rewrapped": rewrapped})
    return RotationResult(version, rewrapped)


async def usage(db: Database) -> dict[int, int]:
    """How many data keys each master version wraps."""
    counts: dict[int, int] = {}
    async with db.read() as conn:
        for table in datakey_rows.KEYED:
            for version, n in (await datakey_rows.count_by_version(conn, table)).items():
                counts[version] = counts.get(version, 0) + n
    return counts


async def retire(db: Database, keyring: KeyRing, version: int) -> None:
    """Remove a master version from the ring, only when nothing uses it."""
    in_use = (await usage(db)).get(version, 0)
    if in_use:
        raise Conflict(
            f"master key version {version} still wraps {in_use} data key(s); "
            "run `otpgate keys rotate --rewrap-only` first"
        )
    keyring.retire(version)
    log.info("master key retired", extra={"version": version})
