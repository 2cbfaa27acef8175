"""Account services: users, API tokens and web passwords.

Each service takes the application context and the acting principal first, checks its own
permission, opens one transaction and returns plain data (never an ORM object). The two
``local_*`` services serve whoever holds the data home (no principal: the OS user is the actor,
and the ledger names them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from faceledger.accounts import throttle
from faceledger.accounts import users as accounts
from faceledger.accounts.passwords import (
    MIN_PASSWORD,
    check_password,
    forget_initial,
    generate_password,
    hash_password,
    save_initial,
    verify_password,
)
from faceledger.errors import AuthenticationError, FaceledgerError, ValidationError
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger


def _user_dict(user: Any) -> dict[str, Any]:
    return {"name": user.name, "role": user.role, "disabled": user.disabled,
            "created_at": user.created_at.isoformat(), "has_password": bool(user.password_hash),
            "unit": user.unit}


def authenticate_token(app: Faceledger, token: str | None,
                       address: str | None = None) -> Principal:
    """The principal an API token stands for (AuthenticationError if none). With the client's
    ``address`` (HTTP callers), bad tokens are counted and throttled per address
    (TooManyAttemptsError, 429); the CLI (no address) is whoever holds the data home."""
    keys = throttle.keys_for(None, address)
    limits = throttle.Limits.of(app.settings)
    with app.db.read() as s:
        throttle.check(s, keys, datetime.now(UTC), limits)
        try:
            return accounts.authenticate(s, token)
        except AuthenticationError as exc:
            failure = exc
    if keys:
        with app.db.write() as s:
            now = datetime.now(UTC)
            throttle.flush_due(s, now, limits)
            throttle.record_failure(s, keys, now, limits)
    raise failure


def user_list(app: Faceledger, principal: Principal) -> list[dict[str, Any]]:
    """Every user: name, role, disabled, created_at (ISO), has_password, unit, locked (locked
    out after failed sign-ins)."""
    require(principal.role, "users.read", principal.name)
    with app.db.read() as s:
        locked = throttle.locked_names(s)
        return [{**_user_dict(u), "locked": u.name in locked} for u in accounts.list_users(s)]


def unlock_user(app: Faceledger, principal: Principal, name: str) -> dict[str, Any]:
    """Lift a sign-in lock-out (or back-off) on an account; ledgered when one was in force.
    Returns {user, unlocked}: unlocked False when nothing held the account."""
    require(principal.role, "users.manage", principal.name)
    with app.db.write() as s:
        accounts.get_user(s, name)
        done = throttle.unlock(s, name, datetime.now(UTC), actor=principal.name)
    return {"user": name, "unlocked": done}


def _new_password_hash(password: str | None) -> str | None:
    if not password:
        return None
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"the password must be at least {MIN_PASSWORD} characters "
                              "(or leave it empty for an API-only user)")
    return hash_password(check_password(password))


def add_user(app: Faceledger, principal: Principal, name: str, role: str,
             password: str | None = None, unit: str | None = None) -> dict[str, Any]:
    """Create a user (with a web password when given); returns {user, role, token}, the token
    shown this once and stored only as a hash."""
    require(principal.role, "users.manage", principal.name)
    pw_hash = _new_password_hash(password)
    with app.db.write() as s:
        user, token = accounts.create_user(s, name, role, actor=principal,
                                           password_hash=pw_hash, unit=unit)
        return {"user": user.name, "role": user.role, "token": token}


def disable_user(app: Faceledger, principal: Principal, name: str) -> dict[str, Any]:
    """Disable a user and revoke their tokens (a no-op when already disabled; never the last
    active admin)."""
    require(principal.role, "users.manage", principal.name)
    with app.db.write() as s:
        accounts.disable_user(s, name, actor=principal)
    return {"user": name, "disabled": True}


def rotate_token(app: Faceledger, principal: Principal, name: str) -> dict[str, Any]:
    """Revoke the user's tokens and issue a new one: {user, token}."""
    require(principal.role, "users.manage", principal.name)
    with app.db.write() as s:
        token = accounts.rotate_token(s, name, actor=principal)
    return {"user": name, "token": token}


def _set_password(app: Faceledger, name: str, password: str | None, actor: str,
                  how: str) -> dict[str, Any]:
    generated = not password
    new = generate_password() if not password else check_password(password)
    with app.db.write() as s:
        accounts.set_password(s, name, hash_password(new), actor=actor, how=how,
                              generated=generated)
    forget_initial(app.settings.home, name)
    return {"user": name, "password": new if generated else None, "generated": generated}


def set_password(app: Faceledger, principal: Principal, name: str, password: str | None,
                 how: str) -> dict[str, Any]:
    """Set or reset a user's web password; none given: generate one. Returns {user, password
    (the generated one, shown once; else None), generated}. ``how``: cli | web | api."""
    require(principal.role, "users.manage", principal.name)
    return _set_password(app, name, password, principal.name, how)


def local_set_password(app: Faceledger, actor: str, name: str,
                       password: str | None) -> dict[str, Any]:
    """``set_password`` for whoever holds the data home (``actor``: ``local:<os user>``)."""
    app.db.require_initialised()
    return _set_password(app, name, password, actor, "local")


def local_admin_token(app: Faceledger, actor: str, admin: str | None) -> dict[str, Any]:
    """A new API token for an admin, for whoever holds the data home: {user, token}."""
    app.db.require_initialised()
    with app.db.write() as s:
        user, token = accounts.issue_local_token(s, admin, actor=actor)
        return {"user": user.name, "token": token}


def initialise(app: Faceledger, admin: str, password: str) -> dict[str, Any]:
    """Create the data home and the first admin (ConflictError when already initialised);
    keeps the initial web password in the data home. Returns {user, role, token, kept}."""
    user, token = app.initialise(admin, password)
    kept = save_initial(app.settings.home, user.name, password)
    return {"user": user.name, "role": user.role, "token": token, "kept": str(kept)}


def initial_password_valid(app: Faceledger, name: str, password: str) -> bool:
    """Whether the first admin's kept initial password still signs ``name`` in."""
    with app.db.read() as s:
        try:
            u = accounts.get_user(s, name)
        except FaceledgerError:
            return False
        return (not u.disabled and u.password_hash is not None
                and verify_password(u.password_hash, password))
