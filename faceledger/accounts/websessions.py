"""Web sign-in: password check, server-side sessions with a CSRF token each."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from faceledger.accounts import throttle
from faceledger.accounts.passwords import verify_or_dummy
from faceledger.accounts.users import Principal
from faceledger.db.schema import User, WebSession
from faceledger.errors import AuthenticationError, FaceledgerError
from faceledger.governance import ledger
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.core import Faceledger


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def password_hash_of(session: Session, name: str) -> str | None:
    """The hash a sign-in as ``name`` is checked against: None for an unknown, disabled or
    API-only user (the caller then verifies against a dummy hash: same time, always refused)."""
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None or user.disabled:
        return None
    return user.password_hash


def sign_in(session: Session, name: str, password: str, hours: float) -> tuple[str, str]:
    """Check the password and open a web session: (session id, CSRF token). Neither throttled
    nor counted: callers answering the network use ``open_session``."""
    stored = password_hash_of(session, name)
    if not verify_or_dummy(stored, password) or stored is None:
        raise AuthenticationError("wrong user name or password")
    return start_session(session, name, stored, hours)


def start_session(session: Session, name: str, checked_hash: str,
                  hours: float) -> tuple[str, str]:
    """Open a web session for ``name``, whose password the caller checked against
    ``checked_hash``: (session id for the cookie, CSRF token). AuthenticationError if the user
    was disabled or the password changed meanwhile."""
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None or user.disabled or user.password_hash != checked_hash:
        raise AuthenticationError("wrong user name or password")
    sid = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.add(WebSession(id_hash=_hash(sid), user_id=user.id, csrf_token=csrf, created_at=now,
                           expires_at=now + timedelta(hours=hours)))
    ledger.append(session, "signin", {"user": user.name}, actor=user.name)
    return sid, csrf


def resolve(session: Session, sid: str | None) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a live session, or None."""
    if not sid:
        return None
    row = session.execute(
        select(WebSession, User).join(User, WebSession.user_id == User.id)
        .where(WebSession.id_hash == _hash(sid))
    ).first()
    if row is None:
        return None
    ws, user = row
    expires = ws.expires_at if ws.expires_at.tzinfo else ws.expires_at.replace(tzinfo=UTC)
    if user.disabled or expires < datetime.now(UTC):
        return None
    return Principal(user.id, user.name, user.role), ws.csrf_token


def sign_out(session: Session, sid: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id_hash == _hash(sid)))


# --- services (one transaction each; the web pages and the API's cookie check call these) ----

def open_session(app: Faceledger, name: str, password: str,
                 address: str | None = None) -> tuple[str, str]:
    """Sign in: (session id for the cookie, CSRF token). Throttled per account name and per
    client ``address`` (TooManyAttemptsError, 429, before any password check); a failure is
    counted (and committed) before the AuthenticationError reaches the caller, and ledgered in
    the key's aggregated ``signin.failed`` entry."""
    name = name.strip()
    limits = throttle.Limits.of(app.settings)
    keys = throttle.keys_for(name, address)
    with app.db.read() as s:  # a held-back caller is answered without taking the write lock
        throttle.check(s, keys, datetime.now(UTC), limits)
    with app.db.write() as s:  # check and count the attempt in one transaction, before argon2
        now = datetime.now(UTC)
        throttle.check(s, keys, now, limits)
        throttle.flush_due(s, now, limits)
        throttle.record_failure(s, keys, now, limits, lock=False)
        stored = password_hash_of(s, name)
    ok = verify_or_dummy(stored, password)  # outside the write lock: argon2 is slow on purpose
    with app.db.write() as s:
        now = datetime.now(UTC)
        if ok and stored is not None:
            throttle.record_success(s, keys, now, limits)
            return start_session(s, name, stored, app.settings.session_hours)
        throttle.confirm_failure(s, keys, now, limits)
    raise AuthenticationError("wrong user name or password")


def session_of(app: Faceledger, sid: str | None) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a live web session, or None."""
    if not sid:
        return None
    with app.db.read() as s:
        return resolve(s, sid)


def session_of_quietly(app: Faceledger, sid: str | None) -> tuple[Principal, str] | None:
    """``session_of`` for the error page's nav bar: any failure (no database yet) is None."""
    try:
        return session_of(app, sid)
    except (SQLAlchemyError, FaceledgerError):
        return None


def close_session(app: Faceledger, principal: Principal, sid: str | None) -> None:
    """Sign out: end this web session."""
    require(principal.role, "signed_in", principal.name)
    if sid:
        with app.db.write() as s:
            sign_out(s, sid)
