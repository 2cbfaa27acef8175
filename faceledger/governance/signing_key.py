"""The ledger's checkpoint signing key: one Ed25519 private key in a file of its own.

File format: PEM, unencrypted PKCS#8 (``-----BEGIN PRIVATE KEY-----``), the form
``openssl genpkey -algorithm ed25519`` writes and ``openssl pkey -pubout`` reads. The file is
``settings.ledger_key_file`` (e.g. on another volume than the data) or
``<home>/keys/ledger-signing.key``. It must be mode 0600 (no group or other bits): a looser
file is refused, not repaired, so an operator notices the exposure. ``create_key`` writes it
with ``O_EXCL`` (never over an existing key) and mode 0600, in a directory it creates 0700.

The key signs checkpoints as the log's origin (``governance/notes.py``): ``ledger_origin``
from the settings, else ``faceledger.invalid/log/<16 hex of SHA-256(public key)>``
(a schema-less URL, per c2sp.org/tlog-checkpoint; ``.invalid`` never resolves).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from faceledger.errors import ConfigError
from faceledger.governance.notes import Signer, valid_name

if TYPE_CHECKING:
    from faceledger.settings import Settings

MAX_KEY_FILE_BYTES = 4096


def key_path(settings: Settings) -> Path:
    """Where the ledger signing key lives."""
    if settings.ledger_key_file is not None:
        return settings.ledger_key_file
    return settings.home / "keys" / "ledger-signing.key"


def default_origin(public_key: bytes) -> str:
    """``faceledger.invalid/log/<first 16 hex digits of SHA-256(raw public key)>``."""
    return "faceledger.invalid/log/" + hashlib.sha256(public_key).hexdigest()[:16]


def create_key(path: Path) -> None:
    """Write a new Ed25519 key to ``path`` (mode 0600; a missing parent is made 0700).
    Refuses (``ConfigError``) to replace an existing file."""
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=0o700)
        os.chmod(parent, 0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path} already exists; a signing key is never overwritten") from exc
    except OSError as exc:
        raise ConfigError(f"cannot create the ledger signing key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())


def _read_key_file(path: Path) -> bytes:
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise ConfigError(f"the ledger signing key {path} does not exist: create it, or set "
                          "FACELEDGER_LEDGER_KEY_FILE to the key's path") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the ledger signing key {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"the ledger signing key {path} is not a regular file")
    if info.st_mode & 0o077:
        raise ConfigError(f"the ledger signing key {path} has mode "
                          f"{stat.S_IMODE(info.st_mode):04o}: others may read it; "
                          f"run `chmod 600 {path}`")
    try:
        with path.open("rb") as fh:
            return fh.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the ledger signing key {path}: {exc.strerror}") from exc


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key in ``path``, after the checks above (``ConfigError`` if any fails)."""
    data = _read_key_file(path)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ConfigError(f"the ledger signing key {path} is too large to be an Ed25519 key")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the ledger signing key {path} is not a PEM PKCS#8 Ed25519 key "
                          "(truncated or damaged?)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"the ledger signing key {path} is not an Ed25519 key")
    return key


def _check_origin(origin: str) -> None:
    if not valid_name(origin):
        raise ConfigError(f"ledger origin {origin!r} must be non-empty, without spaces or '+' "
                          "(a schema-less URL such as example.org/faceledger)")


def load_signer(path: Path, origin: str) -> Signer:
    """A ``Signer`` named ``origin`` for the key in ``path``."""
    _check_origin(origin)
    return Signer(origin, load_private_key(path))


def ledger_signer(settings: Settings) -> Signer:
    """The log's signer: the key at ``key_path(settings)``, named ``settings.ledger_origin``
    or else ``default_origin`` of its public key."""
    key = load_private_key(key_path(settings))
    origin = settings.ledger_origin or default_origin(_raw(key))
    _check_origin(origin)
    return Signer(origin, key)


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_pem(signer: Signer) -> str:
    """The signer's public key as PEM SubjectPublicKeyInfo (for ``openssl pkey -pubin``)."""
    return signer.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
