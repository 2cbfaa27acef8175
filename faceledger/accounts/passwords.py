"""Web passwords: hashing (argon2id), the length rule, generated passwords, and the first
admin's initial credentials file (0600 in the data home, kept until that password is changed)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from faceledger.errors import ValidationError

MIN_PASSWORD = 10
MAX_PASSWORD = 200
INITIAL_FILE = "first-admin.txt"


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return PasswordHasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DUMMY_HASH: list[str] = []


def verify_or_dummy(password_hash: str | None, password: str) -> bool:
    """``verify_password``, or (no hash: an unknown, disabled or API-only user) the same work
    against a dummy hash, so a wrong name takes as long as a wrong password. Always False then."""
    if password_hash is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password(secrets.token_urlsafe(16)))
        verify_password(_DUMMY_HASH[0], password)
        return False
    return verify_password(password_hash, password)


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"the password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationError(f"the password must be at most {MAX_PASSWORD} characters")
    return password


def generate_password() -> str:
    """16 URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


def save_initial(home: Path, user: str, password: str) -> Path:
    """Keep the first admin's web sign-in where only the data home's owner can read it, so that
    `faceledger serve` (`make run`) can show it again until the admin changes the password."""
    path = home / INITIAL_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"user={user}\npassword={password}\n")
    return path


def load_initial(home: Path) -> tuple[str, str] | None:
    path = home / INITIAL_FILE
    try:
        lines = dict(line.split("=", 1) for line in path.read_text("utf-8").splitlines()
                     if "=" in line)
    except OSError:
        return None
    if "user" not in lines or "password" not in lines:
        return None
    return lines["user"], lines["password"]


def forget_initial(home: Path, user: str | None = None) -> bool:
    """Remove the initial credentials (for ``user`` only, when given). True if removed."""
    found = load_initial(home)
    if found is None or (user is not None and found[0] != user):
        return False
    (home / INITIAL_FILE).unlink(missing_ok=True)
    return True
