"""The data home's template key: protects opt-out templates at rest (AES-256-GCM)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from faceledger.errors import ConfigError


def template_key(home: Path) -> bytes:
    path = home / "keys" / "template.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) != 32:
        raise ConfigError(f"{path} is not a 32-byte key")
    return key


def seal(key: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, data, b"faceledger-template")


def unseal(key: bytes, blob: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).decrypt(blob[:12], blob[12:], b"faceledger-template")
