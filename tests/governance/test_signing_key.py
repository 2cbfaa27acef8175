"""The ledger signing key file (faceledger/governance/signing_key.py)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from faceledger.errors import CheckpointError, ConfigError
from faceledger.governance.notes import Checkpoint, open_note, parse_vkey, sign_note
from faceledger.governance.signing_key import (
    create_key,
    default_origin,
    key_path,
    ledger_signer,
    load_private_key,
    load_signer,
    public_pem,
)
from faceledger.settings import Settings

ROOT = hashlib.sha256(b"root").digest()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_is_created_0600_in_a_new_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "volume" / "keys" / "ledger-signing.key"
    create_key(path)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    signer = load_signer(path, "example.org/log")
    assert signer.name == "example.org/log"


def test_create_key_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    create_key(path)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        create_key(path)
    assert path.read_bytes() == before


def test_create_key_ignores_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        create_key(tmp_path / "new" / "k.key")
    finally:
        os.umask(old)
    assert mode(tmp_path / "new" / "k.key") == 0o600
    assert mode(tmp_path / "new") == 0o700


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_a_key_readable_by_others_is_refused_with_chmod_advice(tmp_path: Path, loose: int) -> None:
    path = tmp_path / "k.key"
    create_key(path)
    os.chmod(path, loose)
    with pytest.raises(ConfigError, match=f"chmod 600 {path}"):
        load_signer(path, "example.org/log")


def test_missing_truncated_or_foreign_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_signer(tmp_path / "absent.key", "o")
    path = tmp_path / "k.key"
    create_key(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="truncated"):
        load_private_key(path)
    path.write_bytes(b"\x00" * 32)  # a raw seed is not the format we write
    with pytest.raises(ConfigError, match="PEM PKCS#8"):
        load_private_key(path)
    path.write_bytes(b"x" * 10_000)
    with pytest.raises(ConfigError, match="too large"):
        load_private_key(path)
    with pytest.raises(ConfigError, match="regular file"):
        load_private_key(tmp_path)


def test_a_non_ed25519_pem_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path = tmp_path / "ec.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        load_private_key(path)


def test_a_bad_origin_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    create_key(path)
    for origin in ("", "has space", "a+b"):
        with pytest.raises(ConfigError, match="origin"):
            load_signer(path, origin)


def test_a_different_key_does_not_verify(tmp_path: Path) -> None:
    create_key(tmp_path / "a.key")
    create_key(tmp_path / "b.key")
    a = load_signer(tmp_path / "a.key", "example.org/log")
    b = load_signer(tmp_path / "b.key", "example.org/log")
    assert a.public_key != b.public_key
    note = sign_note(Checkpoint("example.org/log", 1, ROOT).body(), a)
    assert open_note(note, [parse_vkey(a.vkey())]).verified_by == ["example.org/log"]
    with pytest.raises(CheckpointError):
        open_note(note, [parse_vkey(b.vkey())])
    # The same file loads the same key again.
    assert load_signer(tmp_path / "a.key", "example.org/log").vkey() == a.vkey()


def test_key_path_and_origin_from_settings(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plain = Settings(home=home)
    assert key_path(plain) == home / "keys" / "ledger-signing.key"
    create_key(key_path(plain))
    signer = ledger_signer(plain)
    expected = "faceledger.invalid/log/" + hashlib.sha256(signer.public_key).hexdigest()[:16]
    assert signer.name == default_origin(signer.public_key) == expected

    elsewhere = tmp_path / "other-volume" / "log.key"
    custom = Settings(home=home, ledger_key_file=elsewhere, ledger_origin="example.org/faceledger")
    assert key_path(custom) == elsewhere
    create_key(elsewhere)
    assert ledger_signer(custom).name == "example.org/faceledger"
    assert ledger_signer(custom).public_key != signer.public_key
    with pytest.raises(ConfigError, match="origin"):
        ledger_signer(Settings(home=home, ledger_origin="bad origin"))


def test_checkpoint_settings_defaults_and_bounds() -> None:
    s = Settings()
    assert (s.checkpoint_every_entries, s.checkpoint_every_minutes) == (1000, 10)
    assert s.ledger_key_file is None and s.ledger_origin is None
    with pytest.raises(ValueError):
        Settings(checkpoint_every_entries=0)
    with pytest.raises(ValueError):
        Settings(checkpoint_every_minutes=0)


def test_public_pem_is_the_signers_public_key(tmp_path: Path) -> None:
    create_key(tmp_path / "k.key")
    signer = load_signer(tmp_path / "k.key", "o")
    pem = public_pem(signer)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    loaded = load_pem_public_key(pem.encode())
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    assert loaded.public_bytes(Encoding.Raw, PublicFormat.Raw) == signer.public_key
