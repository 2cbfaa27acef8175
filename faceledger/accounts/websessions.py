"""Web sign-in: password check, server-side sessions with a CSRF token each."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from faceledger.accounts.passwords import verify_password
from faceledger.accounts.users import Principal
from faceledger.db.schema import User, WebSession
from faceledger.errors import AuthenticationError, FaceledgerError
from faceledger.governance import ledger
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.core import Faceledger


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def sign_in(session: Session, name: str, password: str, hours: float) -> tuple[str, str]:
    """Check the password; return (session id for the cookie, CSRF token). Failures ledgered."""
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    ok = (user is not None and not user.disabled and user.password_hash is not None
          and verify_password(user.password_hash, password))
    if not ok or user is None:
        ledger.append(session, "signin.failed", {"user": name[:120]}, actor=None)
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

def open_session(app: Faceledger, name: str, password: str) -> tuple[str, str]:
    """Sign in: (session id for the cookie, CSRF token). A failure is ledgered (and committed)
    before the AuthenticationError reaches the caller."""
    failure: AuthenticationError | None = None
    with app.db.write() as s:
        try:
            return sign_in(s, name.strip(), password, app.settings.session_hours)
        except AuthenticationError as exc:
            failure = exc
    raise failure


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
