"""Tests for gateway.vault: the AES-GCM primitives, the envelope layers and the key ring."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway import errors
from gateway.vault import KeyRing, Vault, open_sealed, seal

from .helpers import SHARED, need_shared

VECTORS = SHARED / "vectors" / "wycheproof_aes_gcm_test.json"
WYCHEPROOF_FLOOR = 150  # the file has 197 cases with a 96-bit IV and a 128-bit tag
OWNER = {"tenant_id": "tenant-a", "credential_id": "cred-1"}


def _wycheproof_cases() -> list[Any]:
    """Every valid/invalid case the vault's cipher accepts, or one placeholder if absent."""
    if not VECTORS.is_file():
        return [pytest.param(None, id="vectors-missing")]  # the test skips, or fails in CI
    doc = json.loads(VECTORS.read_text())
    cases = []
    for group in doc["testGroups"]:
        if group["ivSize"] != 96 or group["tagSize"] != 128:
            continue
        assert group["keySize"] in (128, 192, 256)
        for case in group["tests"]:
            if case["result"] in ("valid", "invalid"):
                cases.append(pytest.param(case, id=f"tcId-{case['tcId']}"))
    return cases


WYCHEPROOF = _wycheproof_cases()


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    """A freshly created key ring in a temp dir."""
    created, _ = KeyRing.load_or_create(tmp_path / "keys" / "master.key")
    return created


@pytest.fixture
def vault(ring: KeyRing) -> Vault:
    """A vault over the fresh key ring."""
    return Vault(ring)


def _key_strings(path: Path) -> list[str]:
    """Every key in a ring file as base64, hex and raw-bytes repr, to look for in messages."""
    doc = json.loads(path.read_text())
    raws = [base64.b64decode(k) for k in [*doc["keys"].values(), doc["hash_key"]]]
    return [*doc["keys"].values(), doc["hash_key"], *(r.hex() for r in raws), *map(repr, raws)]


def _flip_each_bit_position(blob: bytes) -> list[bytes]:
    """One copy of ``blob`` per byte, with one bit of that byte flipped."""
    return [blob[:i] + bytes([blob[i] ^ (1 << (i % 8))]) + blob[i + 1 :] for i in range(len(blob))]


# --- Wycheproof ----------------------------------------------------------------


@pytest.mark.parametrize("case", WYCHEPROOF)
def test_wycheproof_aes_gcm(case: dict[str, Any]) -> None:
    """seal produces exactly ct||tag for valid vectors and open_sealed rejects invalid ones."""
    need_shared(VECTORS)
    key, iv, aad = (bytes.fromhex(case[k]) for k in ("key", "iv", "aad"))
    msg, ct_and_tag = bytes.fromhex(case["msg"]), bytes.fromhex(case["ct"] + case["tag"])
    if case["result"] == "valid":
        assert seal(key, iv, msg, aad) == ct_and_tag
        assert open_sealed(key, iv, ct_and_tag, aad) == msg
    else:
        with pytest.raises(errors.VaultError):
            open_sealed(key, iv, ct_and_tag, aad)


def test_wycheproof_case_count() -> None:
    """The vector run covers every key size, both outcomes, and more cases than a floor."""
    need_shared(VECTORS)
    cases = [p.values[0] for p in WYCHEPROOF]
    assert len(cases) >= WYCHEPROOF_FLOOR
    assert {len(c["key"]) * 4 for c in cases} == {128, 192, 256}
    assert {c["result"] for c in cases} == {"valid", "invalid"}


# --- primitives ------------------------------------------------------------------


def test_primitives_reject_wrong_nonce_and_key_sizes() -> None:
    """seal and open_sealed refuse a nonce that is not 96 bits or a key of no AES size."""
    key = os.urandom(32)
    for bad_nonce in (b"", os.urandom(8), os.urandom(16)):
        with pytest.raises(errors.VaultError):
            seal(key, bad_nonce, b"x", b"")
        with pytest.raises(errors.VaultError):
            open_sealed(key, bad_nonce, os.urandom(17), b"")
    with pytest.raises(errors.VaultError):
        seal(os.urandom(31), os.urandom(12), b"x", b"")


def test_open_sealed_error_holds_no_secret() -> None:
    """A failed open says only that authentication failed, never the key or plaintext."""
    key, nonce = os.urandom(32), os.urandom(12)
    sealed = seal(key, nonce, b"JBSWY3DPEHPK3PXP", b"aad")
    with pytest.raises(errors.VaultError) as info:
        open_sealed(key, nonce, sealed, b"other aad")
    text = str(info.value)
    assert "JBSWY3DPEHPK3PXP" not in text
    assert key.hex() not in text
    assert repr(key) not in text


# --- the envelope ------------------------------------------------------------------


def test_field_round_trip(vault: Vault) -> None:
    """A sealed field opens back to its plaintext with the same DEK and context, even empty."""
    dek = vault.new_data_key()
    for plaintext in (b"", b"JBSWY3DPEHPK3PXP", os.urandom(5000)):
        blob = vault.seal_field(dek, plaintext, **OWNER, field="totp_secret")
        assert blob[:2] == b"\x01\x02"
        assert vault.open_field(dek, blob, **OWNER, field="totp_secret") == plaintext


def test_data_key_round_trip(vault: Vault, ring: KeyRing) -> None:
    """A wrapped DEK unwraps to itself and names the active master version in its header."""
    dek = vault.new_data_key()
    assert len(dek) == 32
    blob = vault.wrap_data_key(dek, **OWNER)
    assert blob[:6] == b"\x01\x01\x00\x00\x00\x01"
    assert Vault.wrapped_version(blob) == ring.active_version == 1
    assert vault.unwrap_data_key(blob, **OWNER) == dek


@pytest.mark.parametrize(
    "context",
    [
        {"tenant_id": "tenant-a", "credential_id": "cred-2", "field": "totp_secret"},
        {"tenant_id": "tenant-b", "credential_id": "cred-1", "field": "totp_secret"},
        {"tenant_id": "tenant-a", "credential_id": "cred-1", "field": "password"},
        # the boundaries between parts are encoded, so shifting characters does not help
        {"tenant_id": "tenant-acred-1", "credential_id": "", "field": "totp_secret"},
    ],
    ids=["other-credential", "other-tenant", "other-field", "shifted-boundary"],
)
def test_moved_field_does_not_open(vault: Vault, context: dict[str, str]) -> None:
    """A field blob opened under any other tenant, credential or field fails."""
    dek = vault.new_data_key()
    blob = vault.seal_field(dek, b"secret", **OWNER, field="totp_secret")
    with pytest.raises(errors.VaultError, match="sealed field did not open"):
        vault.open_field(dek, blob, **context)


def test_fields_under_a_wrapped_data_key(vault: Vault) -> None:
    """The one-field shortcuts seal and open as unwrapping the key first does, and still
    refuse another credential's context (which no longer unwraps the key)."""
    dek = vault.new_data_key()
    wrapped = vault.wrap_data_key(dek, **OWNER)
    blob = vault.seal_field_under(wrapped, b"secret", **OWNER, field="f")
    assert vault.open_field(dek, blob, **OWNER, field="f") == b"secret"
    assert vault.open_field_under(wrapped, blob, **OWNER, field="f") == b"secret"
    with pytest.raises(errors.VaultError):
        vault.open_field_under(wrapped, blob, tenant_id="tenant-a", credential_id="x", field="f")
    with pytest.raises(errors.VaultError):
        vault.open_field_under(wrapped, blob, **OWNER, field="g")


def test_field_does_not_open_with_another_data_key(vault: Vault) -> None:
    """A field sealed under one credential's DEK does not open under another DEK."""
    blob = vault.seal_field(vault.new_data_key(), b"secret", **OWNER, field="f")
    with pytest.raises(errors.VaultError):
        vault.open_field(vault.new_data_key(), blob, **OWNER, field="f")


@pytest.mark.parametrize(
    "context",
    [
        {"tenant_id": "tenant-a", "credential_id": "cred-2"},
        {"tenant_id": "tenant-b", "credential_id": "cred-1"},
    ],
    ids=["other-credential", "other-tenant"],
)
def test_moved_wrapped_key_does_not_open(vault: Vault, context: dict[str, str]) -> None:
    """A wrapped DEK unwrapped for another credential or tenant fails."""
    blob = vault.wrap_data_key(vault.new_data_key(), **OWNER)
    with pytest.raises(errors.VaultError, match="wrapped data key did not open"):
        vault.unwrap_data_key(blob, **context)


def test_flipped_bit_anywhere_in_a_field_fails(vault: Vault) -> None:
    """Flipping any bit of a sealed field (header, nonce, ciphertext, tag) makes it fail."""
    dek = vault.new_data_key()
    blob = vault.seal_field(dek, b"0123456789", **OWNER, field="f")
    for tampered in _flip_each_bit_position(blob):
        with pytest.raises(errors.VaultError):
            vault.open_field(dek, tampered, **OWNER, field="f")


def test_flipped_bit_anywhere_in_a_wrapped_key_fails(vault: Vault) -> None:
    """Flipping any bit of a wrapped DEK (header, version, nonce, ciphertext, tag) makes it fail."""
    blob = vault.wrap_data_key(vault.new_data_key(), **OWNER)
    for tampered in _flip_each_bit_position(blob):
        with pytest.raises(errors.VaultError):
            vault.unwrap_data_key(tampered, **OWNER)


def test_malformed_blobs_fail_with_general_messages(vault: Vault) -> None:
    """Truncated, wrong-kind and wrong-format blobs raise VaultError saying what is wrong."""
    dek = vault.new_data_key()
    field_blob = vault.seal_field(dek, b"s", **OWNER, field="f")
    key_blob = vault.wrap_data_key(dek, **OWNER)
    with pytest.raises(errors.VaultError, match="truncated"):
        vault.open_field(dek, field_blob[:29], **OWNER, field="f")
    with pytest.raises(errors.VaultError, match="truncated"):
        Vault.wrapped_version(b"\x01\x01\x00")
    with pytest.raises(errors.VaultError, match="not a wrapped data key"):
        vault.unwrap_data_key(field_blob, **OWNER)
    with pytest.raises(errors.VaultError, match="not a sealed field"):
        vault.open_field(dek, key_blob, **OWNER, field="f")
    with pytest.raises(errors.VaultError, match="unsupported format"):
        vault.open_field(dek, b"\x02" + field_blob[1:], **OWNER, field="f")
    with pytest.raises(errors.VaultError, match="version 7 is not in the key ring"):
        vault.unwrap_data_key(key_blob[:2] + (7).to_bytes(4, "big") + key_blob[6:], **OWNER)


def test_blobs_follow_the_documented_layout(ring: KeyRing, vault: Vault) -> None:
    """Blobs built by hand from the documented header and AAD encoding open, and vice versa."""

    def aad(*parts: bytes) -> bytes:
        return b"".join(len(part).to_bytes(4, "big") + part for part in parts)

    dek, nonce = os.urandom(32), os.urandom(12)
    header = b"\x01\x01\x00\x00\x00\x01"
    dek_aad = aad(b"otpgate/dek", header, b"tenant-a", b"cred-1")
    blob = header + nonce + seal(ring.key(1), nonce, dek, dek_aad)
    assert vault.unwrap_data_key(blob, **OWNER) == dek
    made = vault.wrap_data_key(dek, **OWNER)
    assert open_sealed(ring.key(1), made[6:18], made[18:], dek_aad) == dek

    header = b"\x01\x02"
    field_aad = aad(b"otpgate/field", header, b"tenant-a", b"cred-1", "pässword".encode())
    blob = header + nonce + seal(dek, nonce, b"secret", field_aad)
    assert vault.open_field(dek, blob, **OWNER, field="pässword") == b"secret"
    made = vault.seal_field(dek, b"secret", **OWNER, field="pässword")
    assert open_sealed(dek, made[2:14], made[14:], field_aad) == b"secret"


def test_wrong_size_data_key_is_refused(vault: Vault) -> None:
    """Sealing with, or wrapping, a data key that is not 32 bytes raises VaultError."""
    with pytest.raises(errors.VaultError):
        vault.seal_field(os.urandom(16), b"s", **OWNER, field="f")
    with pytest.raises(errors.VaultError):
        vault.wrap_data_key(os.urandom(16), **OWNER)


def test_nonces_differ_between_seals(vault: Vault) -> None:
    """Two seals of the same plaintext in the same context use different nonces."""
    dek = vault.new_data_key()
    first, second = (vault.seal_field(dek, b"same", **OWNER, field="f") for _ in range(2))
    assert first[2:14] != second[2:14]
    assert first != second
    wrapped = [vault.wrap_data_key(dek, **OWNER) for _ in range(2)]
    assert wrapped[0][6:18] != wrapped[1][6:18]


def test_reprs_hide_keys(ring: KeyRing, vault: Vault) -> None:
    """repr and str of the ring and the vault show no key material."""
    for text in (repr(ring), str(ring), repr(vault), str(vault), repr(ring._state)):
        for secret in _key_strings(ring.path):
            assert secret not in text


# --- the key ring --------------------------------------------------------------------


def test_created_ring_is_private_and_well_formed(tmp_path: Path) -> None:
    """load_or_create makes a 0600 file in a 0700 dir with version 1 and a hash key, once."""
    path = tmp_path / "new" / "master.key"
    ring, created = KeyRing.load_or_create(path)
    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    doc = json.loads(path.read_text())
    assert doc["format"] == "otpgate-keyring/1"
    assert doc["active"] == 1
    assert len(base64.b64decode(doc["keys"]["1"])) == 32
    assert base64.b64decode(doc["hash_key"]) == ring.hash_key
    assert len(ring.hash_key) == 32
    assert ring.hash_key != ring.key(1)
    again, created_again = KeyRing.load_or_create(path)
    assert not created_again
    assert again.key(1) == ring.key(1)
    assert again.hash_key == ring.hash_key


def test_keyed_hash_is_hmac_sha256_of_the_hash_key(ring: KeyRing) -> None:
    """keyed_hash is HMAC-SHA256 under hash_key, with strings taken as UTF-8."""
    expected = hmac.new(ring.hash_key, "tök".encode(), hashlib.sha256).digest()
    assert ring.keyed_hash("tök") == expected
    assert ring.keyed_hash("tök".encode()) == expected


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_load_refuses_a_file_open_to_others(ring: KeyRing, mode: int) -> None:
    """A ring file with any group or other permission bit is refused with a chmod hint."""
    ring.path.chmod(mode)
    with pytest.raises(errors.ConfigError) as info:
        KeyRing.load(ring.path)
    message = str(info.value)
    assert str(ring.path) in message
    assert f"(mode {mode:04o})" in message
    assert "chmod 600" in message


def _corrupt(doc: dict[str, Any], change: str) -> str:
    """A ring file text with one kind of damage."""
    if change == "bad-json":
        return json.dumps(doc)[:-5]
    if change == "not-an-object":
        return "[1, 2]"
    if change == "wrong-format":
        doc["format"] = "otpgate-keyring/2"
    elif change == "short-key":
        doc["keys"]["1"] = base64.b64encode(os.urandom(16)).decode()
    elif change == "bad-base64":
        doc["keys"]["1"] = doc["keys"]["1"][:-3] + "!!="
    elif change == "short-hash-key":
        doc["hash_key"] = base64.b64encode(os.urandom(31)).decode()
    elif change == "no-hash-key":
        del doc["hash_key"]
    elif change == "no-active":
        del doc["active"]
    elif change == "active-missing":
        doc["active"] = 2
    elif change == "active-bool":
        doc["active"] = True
    elif change == "no-keys":
        doc["keys"] = {}
    elif change == "bad-version-name":
        doc["keys"]["01"] = doc["keys"].pop("1")
    return json.dumps(doc)


@pytest.mark.parametrize(
    "change",
    [
        "bad-json",
        "not-an-object",
        "wrong-format",
        "short-key",
        "bad-base64",
        "short-hash-key",
        "no-hash-key",
        "no-active",
        "active-missing",
        "active-bool",
        "no-keys",
        "bad-version-name",
    ],
)
def test_load_refuses_a_malformed_file(ring: KeyRing, change: str) -> None:
    """A malformed ring file gives a one-line ConfigError naming the path and no key material."""
    secrets = _key_strings(ring.path)
    text = _corrupt(json.loads(ring.path.read_text()), change)
    secrets += re.findall(r'"([A-Za-z0-9+/=!]{16,})"', text)  # keys as damaged, if they were
    ring.path.write_text(text)
    with pytest.raises(errors.ConfigError) as info:
        KeyRing.load(ring.path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"master key file {ring.path} is malformed: ")
    for secret in secrets:
        assert secret not in message


def test_load_refuses_a_missing_file(tmp_path: Path) -> None:
    """A missing ring file gives a one-line ConfigError naming the path."""
    path = tmp_path / "absent.key"
    with pytest.raises(errors.ConfigError, match="does not exist") as info:
        KeyRing.load(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_load_refuses_a_directory(tmp_path: Path) -> None:
    """A path that is a directory, not a file, gives a one-line ConfigError naming it."""
    path = tmp_path / "master.key"
    path.mkdir(mode=0o700)
    with pytest.raises(errors.ConfigError, match="not a regular file") as info:
        KeyRing.load(path)
    assert str(path) in str(info.value)


def test_load_refuses_a_path_that_cannot_be_opened(tmp_path: Path) -> None:
    """A path the OS will not open (here, under a regular file) gives a one-line ConfigError."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    path = blocker / "master.key"
    with pytest.raises(errors.ConfigError, match="cannot be read") as info:
        KeyRing.load(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode 000 file anyway")
def test_load_refuses_an_unreadable_file(ring: KeyRing) -> None:
    """A ring file the process may not read gives a one-line ConfigError naming the path."""
    ring.path.chmod(0o000)
    with pytest.raises(errors.ConfigError, match="cannot be read") as info:
        KeyRing.load(ring.path)
    assert str(ring.path) in str(info.value)


def test_rotation_keeps_old_keys_opening_and_rewraps(ring: KeyRing, vault: Vault) -> None:
    """After add_version, old wrapped DEKs still open and rewrap moves them to the new version."""
    dek = vault.new_data_key()
    old_blob = vault.wrap_data_key(dek, **OWNER)
    field_blob = vault.seal_field(dek, b"secret", **OWNER, field="f")
    assert ring.add_version() == 2
    assert ring.active_version == 2
    assert ring.versions == [1, 2]
    assert stat.S_IMODE(ring.path.stat().st_mode) == 0o600
    assert vault.unwrap_data_key(old_blob, **OWNER) == dek
    new_blob = vault.rewrap(old_blob, **OWNER)
    assert Vault.wrapped_version(new_blob) == 2
    assert vault.open_field(
        vault.unwrap_data_key(new_blob, **OWNER), field_blob, **OWNER, field="f"
    )
    ring.retire(1)
    assert ring.versions == [2]
    assert KeyRing.load(ring.path).versions == [2]
    assert vault.unwrap_data_key(new_blob, **OWNER) == dek
    with pytest.raises(errors.VaultError, match="version 1 is not in the key ring"):
        vault.unwrap_data_key(old_blob, **OWNER)
    assert not [p for p in ring.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_retire_refuses_active_and_unknown_versions(ring: KeyRing) -> None:
    """retire raises Conflict for the active version and for a version not in the ring."""
    with pytest.raises(errors.Conflict, match="version 1 is active"):
        ring.retire(1)
    with pytest.raises(errors.Conflict, match="version 9 is not in the key ring"):
        ring.retire(9)
    assert KeyRing.load(ring.path).versions == [1]


def test_second_ring_finds_a_version_added_by_the_first(ring: KeyRing) -> None:
    """A KeyRing on the same file re-reads it when asked for a version it does not know."""
    other = KeyRing.load(ring.path)
    blob = Vault(ring).wrap_data_key(dek := Vault.new_data_key(), **OWNER)
    ring.add_version()
    rotated = Vault(ring).rewrap(blob, **OWNER)
    assert other.versions == [1]
    assert Vault(other).unwrap_data_key(rotated, **OWNER) == dek
    assert other.versions == [1, 2]
    assert other.key(2) == ring.key(2)


def test_reload_picks_up_the_active_version(ring: KeyRing) -> None:
    """reload makes a version activated by another process the one used for wrapping."""
    other = KeyRing.load(ring.path)
    ring.add_version()
    assert other.active_version == 1
    other.reload()
    assert other.active_version == 2
    assert Vault.wrapped_version(Vault(other).wrap_data_key(Vault.new_data_key(), **OWNER)) == 2


def test_concurrent_add_version_loses_nothing(ring: KeyRing) -> None:
    """add_version from two threads on two ring objects yields distinct versions, all kept."""
    rings = [ring, KeyRing.load(ring.path)]
    results: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def rotate(index: int) -> None:
        barrier.wait()
        for _ in range(10):
            results[index].append(rings[index].add_version())

    threads = [threading.Thread(target=rotate, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    added = results[0] + results[1]
    assert sorted(added) == list(range(2, 22))
    final = KeyRing.load(ring.path)
    assert final.versions == list(range(1, 22))
    assert final.active_version == 21
    for version in added:
        owner = rings[0] if version in results[0] else rings[1]
        assert final.key(version) == owner.key(version)
