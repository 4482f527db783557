"""Envelope encryption for the secrets otpgate stores.

Two layers, both AES-256-GCM with a fresh random 96-bit nonce and a 128-bit tag:

* A master key ring (a 0600 JSON file, see `KeyRing`) holds numbered master
  keys. The active one wraps per-credential data keys (DEKs).
* Each credential's DEK seals that credential's secret fields. The database
  only ever holds wrapped DEKs and sealed fields.

Every blob starts with a header that says what it is::

    wrapped data key:  [format=1][kind=1][master version, 4 bytes BE][nonce 12][ct+tag]
    sealed field:      [format=1][kind=2][nonce 12][ct+tag]

The associated data given to AES-GCM is a length-prefixed encoding of a domain
label (``otpgate/dek`` or ``otpgate/field``), the header bytes, and the tenant,
credential and (for fields) field name. So a blob opens only where it was
sealed: editing the header, or moving a blob to another tenant, credential or
field, makes it fail to open with `VaultError`.

Rotation: `KeyRing.add_version` makes a new active master key; old versions
keep opening their wrapped DEKs, and `Vault.rewrap` moves a DEK to the active
version without touching the fields it sealed. `KeyRing.retire` then drops an
old version; the caller must first check that no wrapped DEK still uses it.
A `KeyRing` re-reads its file once when asked for a version it does not know,
so versions added by ``otpgate keys rotate`` or another replica are found.

The ring also holds ``hash_key``, a never-rotated key for keyed hashes
(HMAC-SHA256) of API keys and tokens. Nothing here logs, and no message or
repr holds key material or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import fcntl
import hmac
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway import errors

FORMAT = 1
KIND_WRAPPED_KEY = 1
KIND_SEALED_FIELD = 2
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
KEYRING_FORMAT = "otpgate-keyring/1"

_DEK_LABEL = b"otpgate/dek"
_FIELD_LABEL = b"otpgate/field"
_MAX_VERSION = 2**32 - 1


def _cipher(key: bytes, nonce: bytes) -> AESGCM:
    if len(nonce) != NONCE_SIZE:
        raise errors.VaultError("nonce is not 96 bits")
    try:
        return AESGCM(key)
    except ValueError:
        raise errors.VaultError("key is not a valid AES key size") from None


def seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt with AES-GCM and return ciphertext || 128-bit tag."""
    return _cipher(key, nonce).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ct_and_tag: bytes, aad: bytes) -> bytes:
    """Decrypt ciphertext || tag from `seal`; `VaultError` when it does not authenticate."""
    cipher = _cipher(key, nonce)
    try:
        return cipher.decrypt(nonce, ct_and_tag, aad)
    except InvalidTag:
        raise errors.VaultError("authentication failed") from None


def _aad(label: bytes, header: bytes, *parts: str) -> bytes:
    """Length-prefix the label, the header and each context part, so no two contexts collide."""
    items = [label, header, *(p.encode("utf-8", "surrogatepass") for p in parts)]
    return b"".join(len(item).to_bytes(4, "big") + item for item in items)


_NAMES = {KIND_WRAPPED_KEY: "wrapped data key", KIND_SEALED_FIELD: "sealed field"}
_HEADER_SIZES = {KIND_WRAPPED_KEY: 6, KIND_SEALED_FIELD: 2}


def _split(blob: bytes, kind: int) -> tuple[bytes, bytes, bytes]:
    """Split a blob into (header, nonce, ct+tag) after checking its format, kind and length."""
    size, what = _HEADER_SIZES[kind], _NAMES[kind]
    if len(blob) >= 2 and blob[0] != FORMAT:
        raise errors.VaultError(f"{what} has an unsupported format")
    if len(blob) >= 2 and blob[1] != kind:
        raise errors.VaultError(f"blob is not a {what}")
    if len(blob) < size + NONCE_SIZE + TAG_SIZE:
        raise errors.VaultError(f"{what} is truncated")
    return blob[:size], blob[size : size + NONCE_SIZE], blob[size + NONCE_SIZE :]


def _seal_blob(key: bytes, header: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return header + nonce + seal(key, nonce, plaintext, aad)


def _open_blob(key: bytes, nonce: bytes, body: bytes, aad: bytes, kind: int) -> bytes:
    try:
        return open_sealed(key, nonce, body, aad)
    except errors.VaultError:
        raise errors.VaultError(
            f"{_NAMES[kind]} did not open (wrong key, tenant, credential or field, or tampered)"
        ) from None


def _check_dek(dek: bytes) -> None:
    if len(dek) != KEY_SIZE:
        raise errors.VaultError(f"data key is not {KEY_SIZE} bytes")


@dataclasses.dataclass(frozen=True, eq=False)
class _RingState:
    """One consistent snapshot of the key ring file."""

    active: int
    keys: dict[int, bytes] = dataclasses.field(repr=False)
    hash_key: bytes = dataclasses.field(repr=False)


class _Malformed(Exception):
    """A problem with the ring file's contents, worded without any key material."""


def _b64key(value: object, what: str) -> bytes:
    """Decode one base64 key and check it is 32 bytes, naming only ``what`` on failure."""
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        raise _Malformed(f"{what} is not valid base64") from None
    if len(raw) != KEY_SIZE:
        raise _Malformed(f"{what} is missing or not {KEY_SIZE} bytes of base64")
    return raw


def _parse_ring(raw: bytes) -> _RingState:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise _Malformed("the file is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != KEYRING_FORMAT:
        raise _Malformed(f'"format" is not "{KEYRING_FORMAT}"')
    keys_doc = doc.get("keys")
    if not isinstance(keys_doc, dict) or not keys_doc:
        raise _Malformed('"keys" is missing or empty')
    keys: dict[int, bytes] = {}
    for name, value in keys_doc.items():
        valid_name = name.isascii() and name.isdigit() and name == str(int(name))
        if not valid_name or not 0 < int(name) <= _MAX_VERSION:
            raise _Malformed('a name in "keys" is not a version number')
        keys[int(name)] = _b64key(value, f"key version {name}")
    active = doc.get("active")
    if type(active) is not int or active not in keys:
        raise _Malformed('"active" is not one of the versions in "keys"')
    return _RingState(active=active, keys=keys, hash_key=_b64key(doc.get("hash_key"), '"hash_key"'))


def _read_ring(path: Path) -> _RingState:
    """Read and check the key ring file; `ConfigError` with one line on any problem."""
    where = f"master key file {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise errors.ConfigError(f"{where} does not exist") from None
    except OSError as exc:
        raise errors.ConfigError(f"{where} cannot be read ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise errors.ConfigError(f"{where} is not a regular file")
        if mode & 0o077:
            raise errors.ConfigError(
                f"{where} is readable or writable by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 on it"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read()
        return _parse_ring(raw)
    except OSError as exc:
        raise errors.ConfigError(f"{where} cannot be read ({exc.strerror})") from None
    except _Malformed as exc:
        raise errors.ConfigError(f"{where} is malformed: {exc}") from None
    finally:
        os.close(fd)


def _write_ring(path: Path, state: _RingState) -> None:
    """Replace the key ring file atomically; the new file is 0600 from its creation."""
    doc = {
        "format": KEYRING_FORMAT,
        "active": state.active,
        "keys": {str(v): base64.b64encode(k).decode() for v, k in sorted(state.keys.items())},
        "hash_key": base64.b64encode(state.hash_key).decode(),
    }
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(doc, indent=2).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``<path>.lock`` (kept on disk) for a read-modify-write."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


class KeyRing:
    """The numbered master keys and the hash key, backed by one 0600 JSON file."""

    def __init__(self, path: Path, state: _RingState) -> None:
        """Use `load` or `load_or_create`; this takes an already checked snapshot."""
        self._path = path
        self._state = state  # replaced whole, never mutated, so readers see one snapshot

    def __repr__(self) -> str:
        return f"KeyRing(path={str(self._path)!r}, active={self.active_version})"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Load the ring file; `ConfigError` if it is missing, malformed or not private."""
        path = Path(path)
        return cls(path, _read_ring(path))

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> tuple[KeyRing, bool]:
        """Load the ring file, creating it with version 1 first if absent; also say if created."""
        path = Path(path)
        if os.path.lexists(path):  # no lock needed, and the directory may be read-only
            return cls.load(path), False
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with _file_lock(path):
                if os.path.lexists(path):  # another process created it meanwhile
                    return cls.load(path), False
                state = _RingState(1, {1: os.urandom(KEY_SIZE)}, os.urandom(KEY_SIZE))
                _write_ring(path, state)
        except OSError as exc:
            msg = f"master key file {path} cannot be created ({exc.strerror})"
            raise errors.ConfigError(msg) from None
        return cls(path, state), True

    @property
    def path(self) -> Path:
        return self._path

    @property
    def active_version(self) -> int:
        return self._state.active

    @property
    def versions(self) -> list[int]:
        return sorted(self._state.keys)

    @property
    def hash_key(self) -> bytes:
        return self._state.hash_key

    def keyed_hash(self, value: bytes | str) -> bytes:
        """HMAC-SHA256 of ``value`` (UTF-8 if a string) under the hash key."""
        data = value.encode("utf-8") if isinstance(value, str) else value
        return hmac.digest(self._state.hash_key, data, "sha256")

    def key(self, version: int) -> bytes:
        """The master key of ``version``, re-reading the file once if it is not known yet.

        `VaultError` if the version is still unknown (retired, or never existed).
        """
        found = self._state.keys.get(version)
        if found is None:
            self.reload()
            found = self._state.keys.get(version)
        if found is None:
            raise errors.VaultError(f"master key version {version} is not in the key ring")
        return found

    def reload(self) -> None:
        """Re-read the file, e.g. to pick up a version another process made active."""
        self._state = _read_ring(self._path)

    def _rewrite(self, change: Callable[[_RingState], _RingState]) -> _RingState:
        """Read-modify-write the file under its lock, so concurrent writers lose nothing."""
        try:
            with _file_lock(self._path):
                new = change(_read_ring(self._path))
                _write_ring(self._path, new)
        except OSError as exc:
            msg = f"master key file {self._path} cannot be written ({exc.strerror})"
            raise errors.ConfigError(msg) from None
        self._state = new
        return new

    def add_version(self) -> int:
        """Add a new random master key as version max+1, make it active and return it."""

        def add(current: _RingState) -> _RingState:
            version = max(current.keys) + 1
            keys = {**current.keys, version: os.urandom(KEY_SIZE)}
            return _RingState(active=version, keys=keys, hash_key=current.hash_key)

        return self._rewrite(add).active

    def retire(self, version: int) -> None:
        """Remove ``version`` from the ring; `Conflict` if it is active or unknown.

        The caller must first check that no wrapped data key still uses it (the ring
        cannot see the database); data keys wrapped with it stop opening for good.
        """

        def drop(current: _RingState) -> _RingState:
            if version not in current.keys:
                raise errors.Conflict(f"master key version {version} is not in the key ring")
            if version == current.active:
                raise errors.Conflict(
                    f"master key version {version} is active; add a new version before retiring it"
                )
            keys = {v: k for v, k in current.keys.items() if v != version}
            return _RingState(active=current.active, keys=keys, hash_key=current.hash_key)

        self._rewrite(drop)


class Vault:
    """Wraps data keys under the master key ring and seals fields under data keys."""

    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring

    def __repr__(self) -> str:
        return f"Vault({self._keyring!r})"

    @staticmethod
    def new_data_key() -> bytes:
        """A fresh random 256-bit data key."""
        return os.urandom(KEY_SIZE)

    @staticmethod
    def wrapped_version(blob: bytes) -> int:
        """The master key version named in a wrapped data key's header."""
        header, _, _ = _split(blob, KIND_WRAPPED_KEY)
        return int.from_bytes(header[2:], "big")

    def wrap_data_key(self, dek: bytes, *, tenant_id: str, credential_id: str) -> bytes:
        """Seal ``dek`` under the active master key, bound to its tenant and credential."""
        _check_dek(dek)
        version = self._keyring.active_version
        header = bytes([FORMAT, KIND_WRAPPED_KEY]) + version.to_bytes(4, "big")
        aad = _aad(_DEK_LABEL, header, tenant_id, credential_id)
        return _seal_blob(self._keyring.key(version), header, dek, aad)

    def unwrap_data_key(self, blob: bytes, *, tenant_id: str, credential_id: str) -> bytes:
        """Open a wrapped data key with the master version its header names."""
        header, nonce, body = _split(blob, KIND_WRAPPED_KEY)
        master = self._keyring.key(int.from_bytes(header[2:], "big"))
        aad = _aad(_DEK_LABEL, header, tenant_id, credential_id)
        dek = _open_blob(master, nonce, body, aad, KIND_WRAPPED_KEY)
        _check_dek(dek)
        return dek

    def rewrap(self, blob: bytes, *, tenant_id: str, credential_id: str) -> bytes:
        """Re-wrap a data key under the active master version (the fields stay as they are)."""
        dek = self.unwrap_data_key(blob, tenant_id=tenant_id, credential_id=credential_id)
        return self.wrap_data_key(dek, tenant_id=tenant_id, credential_id=credential_id)

    def seal_field(
        self, dek: bytes, plaintext: bytes, *, tenant_id: str, credential_id: str, field: str
    ) -> bytes:
        """Seal one field's value under a data key, bound to tenant, credential and field."""
        _check_dek(dek)
        header = bytes([FORMAT, KIND_SEALED_FIELD])
        aad = _aad(_FIELD_LABEL, header, tenant_id, credential_id, field)
        return _seal_blob(dek, header, plaintext, aad)

    def open_field(
        self, dek: bytes, blob: bytes, *, tenant_id: str, credential_id: str, field: str
    ) -> bytes:
        """Open a sealed field; `VaultError` if it was moved, tampered or the key is wrong."""
        header, nonce, body = _split(blob, KIND_SEALED_FIELD)
        aad = _aad(_FIELD_LABEL, header, tenant_id, credential_id, field)
        return _open_blob(dek, nonce, body, aad, KIND_SEALED_FIELD)

    def seal_field_under(
        self,
        wrapped_key: bytes,
        plaintext: bytes,
        *,
        tenant_id: str,
        credential_id: str,
        field: str,
    ) -> bytes:
        """:meth:`seal_field` under the data key *wrapped_key* wraps (one field to seal)."""
        dek = self.unwrap_data_key(wrapped_key, tenant_id=tenant_id, credential_id=credential_id)
        return self.seal_field(
            dek, plaintext, tenant_id=tenant_id, credential_id=credential_id, field=field
        )

    def open_field_under(
        self, wrapped_key: bytes, blob: bytes, *, tenant_id: str, credential_id: str, field: str
    ) -> bytes:
        """:meth:`open_field` with the data key *wrapped_key* wraps (one field to open)."""
        dek = self.unwrap_data_key(wrapped_key, tenant_id=tenant_id, credential_id=credential_id)
        return self.open_field(
            dek, blob, tenant_id=tenant_id, credential_id=credential_id, field=field
        )
