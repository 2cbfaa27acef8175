"""Users and API tokens. Tokens are shown once and stored only as SHA-256 hashes.

The functions taking a ``Session`` are the repository; the services the entry layers call
(``app, principal`` first, one transaction each, their own permission check) are in
``faceledger.accounts.service``."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from faceledger.db.schema import Token, User, WebSession
from faceledger.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from faceledger.governance import ledger
from faceledger.roles import Role

TOKEN_PREFIX = "flk_"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    name: str
    role: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 120 or any(c.isspace() for c in name):
        raise ValidationError("user name must be 1-120 characters with no spaces")
    return name


def _check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationError(
            f"unknown role {role!r}; choose one of {', '.join(r.value for r in Role)}"
        ) from None


def _issue_token(session: Session, user: User) -> str:
    token = new_token()
    session.add(Token(user_id=user.id, token_hash=hash_token(token), prefix=token[:8],
                      created_at=datetime.now(UTC)))
    return token


def create_user(
    session: Session, name: str, role: str, *, actor: Principal | None,
    password_hash: str | None = None, unit: str | None = None,
) -> tuple[User, str]:
    name = _check_name(name)
    r = _check_role(role)
    if session.execute(select(User).where(User.name == name)).scalar_one_or_none():
        raise ConflictError(f"user {name!r} already exists")
    user = User(name=name, role=r.value, disabled=False, password_hash=password_hash,
                unit=(unit or "").strip()[:200] or None, created_at=datetime.now(UTC))
    session.add(user)
    session.flush()
    token = _issue_token(session, user)
    ledger.append(
        session, "user.created",
        {"user": name, "role": r.value, "unit": user.unit,
         "by": actor.name if actor else None,
         "token_prefix": token[:8]},
        actor=actor.name if actor else name,
    )
    return user, token


def get_user(session: Session, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.id)).scalars())


def disable_user(session: Session, name: str, *, actor: Principal) -> User:
    user = get_user(session, name)
    if user.id == actor.user_id:
        raise ValidationError("you cannot disable yourself")
    if user.disabled:
        return user  # already disabled: nothing to do, nothing to ledger
    if user.role == Role.admin.value:
        others = session.execute(select(func.count()).select_from(User).where(
            User.role == Role.admin.value, User.disabled.is_(False), User.id != user.id)
        ).scalar_one()
        if not others:
            raise ConflictError(f"{name!r} is the last active admin; make another admin first")
    user.disabled = True
    now = datetime.now(UTC)
    for tok in session.execute(select(Token).where(Token.user_id == user.id,
                                                   Token.revoked_at.is_(None))).scalars():
        tok.revoked_at = now
    ledger.append(session, "user.disabled", {"user": name, "by": actor.name}, actor=actor.name)
    return user


def rotate_token(session: Session, name: str, *, actor: Principal) -> str:
    """Revoke the user's tokens and issue a new one."""
    user = get_user(session, name)
    if user.disabled:
        raise ValidationError(f"user {name!r} is disabled")
    now = datetime.now(UTC)
    for tok in session.execute(select(Token).where(Token.user_id == user.id,
                                                   Token.revoked_at.is_(None))).scalars():
        tok.revoked_at = now
    token = _issue_token(session, user)
    ledger.append(session, "token.rotated", {"user": name, "by": actor.name,
                                             "token_prefix": token[:8]}, actor=actor.name)
    return token


def set_password(session: Session, name: str, password_hash: str, *, actor: str,
                 how: str, generated: bool = False) -> User:
    """Set or reset a user's web password (ledgered; never the password or its hash).

    ``actor`` is the admin's name, or ``local:<os user>`` for whoever holds the data home.
    A reset by someone else ends the user's web sessions; changing one's own keeps them."""
    user = get_user(session, name)
    if user.disabled:
        raise ValidationError(f"user {name!r} is disabled")
    had = user.password_hash is not None
    user.password_hash = password_hash
    if actor != user.name:
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    ledger.append(session, "user.password_set",
                  {"user": name, "by": actor, "how": how, "generated": generated,
                   "replaced": had}, actor=actor)
    return user


def first_admin(session: Session, name: str | None = None) -> User:
    """The named admin, or the earliest active one."""
    user: User | None
    if name:
        user = get_user(session, name)
        if user.role != Role.admin.value:
            raise ValidationError(f"{name!r} is a {user.role}, not an admin")
    else:
        user = session.execute(select(User).where(User.role == Role.admin.value,
                                                  User.disabled.is_(False))
                               .order_by(User.id).limit(1)).scalar_one_or_none()
        if user is None:
            raise NotFoundError("no active admin in this data home")
    if user.disabled:
        raise ValidationError(f"admin {user.name!r} is disabled")
    return user


def issue_local_token(session: Session, name: str | None, *, actor: str) -> tuple[User, str]:
    """A new API token for an admin, for whoever holds the data home (no token needed).
    Existing tokens stay valid; the issue is ledgered with the local actor."""
    user = first_admin(session, name)
    token = _issue_token(session, user)
    ledger.append(session, "token.issued_locally",
                  {"user": user.name, "by": actor, "token_prefix": token[:8]}, actor=actor)
    return user, token


def authenticate(session: Session, token: str | None) -> Principal:
    if token is not None and not token.strip():
        raise AuthenticationError(
            "the API token is empty (FACELEDGER_TOKEN is set to an empty string: did the "
            "command meant to print it fail?). An admin gives one with `faceledger users token "
            "NAME`; whoever holds the data home can run `faceledger admin-token`"
        )
    if not token:
        raise AuthenticationError(
            "no API token: set FACELEDGER_TOKEN (printed by `faceledger init` / `users add`; "
            "whoever holds the data home: `faceledger admin-token`)"
        )
    row = session.execute(
        select(Token, User).join(User, Token.user_id == User.id)
        .where(Token.token_hash == hash_token(token.strip()))
    ).first()
    if row is None:
        raise AuthenticationError("invalid API token")
    tok, user = row
    if tok.revoked_at is not None or user.disabled:
        raise AuthenticationError("this token was revoked or its user disabled")
    return Principal(user.id, user.name, user.role)
