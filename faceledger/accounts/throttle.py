"""Sign-in throttling: failed web sign-ins and bad bearer tokens, counted in the database (so the
CLI, the API and the web UI share one state, across requests, workers and restarts).

Two kinds of key: ``user:<name>`` (web passwords; any name, existing or not, so a refusal says
nothing about which names exist) and ``addr:<ip>`` (web passwords and bearer tokens). Each
failure past a key's free allowance doubles its back-off (``backoff_seconds``); an account with
``lockout_after`` failures in a row is locked until an admin unlocks it. Failures are ledgered
as one ``signin.failed`` entry per key and window, with a count (``flush_due``), so nobody can
grow the ledger by one entry per guess. The functions taking a ``Session`` are the repository."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from faceledger.db.schema import SigninThrottle
from faceledger.errors import TooManyAttemptsError
from faceledger.governance import ledger

if TYPE_CHECKING:
    from faceledger.settings import Settings

USER = "user:"
ADDR = "addr:"


@dataclass(frozen=True)
class Limits:
    account_free: int
    address_free: int
    base: float
    cap: float
    lockout_after: int
    forget_s: float
    window_s: float

    @classmethod
    def of(cls, s: Settings) -> Limits:
        return cls(s.signin_free_failures, s.signin_address_free_failures, s.signin_backoff_s,
                   s.signin_backoff_max_s, s.signin_lockout_after, s.signin_forget_s,
                   s.signin_window_s)

    def free(self, key: str) -> int:
        return self.account_free if key.startswith(USER) else self.address_free


def backoff_seconds(failures: int, *, free: int, base: float, cap: float) -> float:
    """The wait after ``failures`` failures in a row: none before ``free``, then base, 2x, 4x…"""
    if failures < free:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - free, 60)))


def user_key(name: str) -> str:
    return USER + name.strip()[:120]


def keys_for(name: str | None, address: str | None) -> list[str]:
    keys = [user_key(name)] if name is not None else []
    return keys + ([ADDR + address[:100]] if address else [])


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def check(session: Session, keys: list[str], now: datetime, limits: Limits) -> None:
    """TooManyAttemptsError (429, ``retry_after`` seconds) when any key is locked or waiting."""
    if not keys:
        return
    rows = session.execute(select(SigninThrottle).where(SigninThrottle.key.in_(keys))).scalars()
    wait = 0.0
    for row in rows:
        if row.locked_at is not None:
            raise TooManyAttemptsError(
                "too many failed sign-ins: this account is locked until an admin unlocks it "
                "(Admin page, or `faceledger users unlock NAME`)",
                retry_after=int(limits.cap))
        until = _aware(row.blocked_until)
        if until is not None and until > now:
            wait = max(wait, (until - now).total_seconds())
    if wait > 0:
        secs = max(1, math.ceil(wait))
        raise TooManyAttemptsError(
            f"too many failed attempts; try again in {secs} second{'s' if secs > 1 else ''}",
            retry_after=secs)


def record_failure(session: Session, keys: list[str], now: datetime, limits: Limits,
                   *, lock: bool = True) -> None:
    """Count one failure on each key: back-off, the window's count, and (``lock``) the lock-out
    (ledgered). A sign-in counts its attempt before checking the password (``lock=False``), so
    parallel guesses cannot all slip in before the first is counted; see ``refund``."""
    for key in keys:
        row = session.get(SigninThrottle, key)
        if row is None:
            row = SigninThrottle(key=key, failures=0, window_count=0)
            session.add(row)
        last = _aware(row.last_failure_at)
        if last is not None and (now - last).total_seconds() > limits.forget_s:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        if row.window_start is None:
            row.window_start = now
        row.window_count += 1
        wait = backoff_seconds(row.failures, free=limits.free(key), base=limits.base,
                               cap=limits.cap)
        row.blocked_until = now + timedelta(seconds=wait) if wait else None
        if lock:
            _lock_if_due(session, row, now, limits)
    session.flush()


def _lock_if_due(session: Session, row: SigninThrottle, now: datetime, limits: Limits) -> None:
    if (row.key.startswith(USER) and limits.lockout_after and row.locked_at is None
            and row.failures >= limits.lockout_after):
        row.locked_at = now
        ledger.append(session, "signin.locked",
                      {"user": row.key[len(USER):], "failures": row.failures}, actor=None)


def confirm_failure(session: Session, keys: list[str], now: datetime, limits: Limits) -> None:
    """The password was wrong: the counted attempt stands; lock the account when due."""
    for key in keys:
        row = session.get(SigninThrottle, key)
        if row is not None:
            _lock_if_due(session, row, now, limits)


def refund(session: Session, key: str, limits: Limits) -> None:
    """The password was right: take back the attempt counted up front on ``key``."""
    row = session.get(SigninThrottle, key)
    if row is None:
        return
    row.failures = max(0, row.failures - 1)
    row.window_count = max(0, row.window_count - 1)
    if not row.window_count:
        row.window_start = None
    wait = backoff_seconds(row.failures, free=limits.free(key), base=limits.base, cap=limits.cap)
    last = _aware(row.last_failure_at)
    row.blocked_until = last + timedelta(seconds=wait) if wait and last else None


def _ledger_window(session: Session, row: SigninThrottle, now: datetime) -> None:
    if row.window_count:
        who = ({"user": row.key[len(USER):]} if row.key.startswith(USER)
               else {"address": row.key[len(ADDR):]})
        start = _aware(row.window_start) or now
        ledger.append(session, "signin.failed",
                      {**who, "count": row.window_count, "from": start.isoformat(),
                       "to": now.isoformat()}, actor=None)
    row.window_count = 0
    row.window_start = None


def flush_due(session: Session, now: datetime, limits: Limits) -> int:
    """Ledger every window that has closed (one entry per key, with its count) and drop keys
    with nothing left to remember. Returns the entries written."""
    closed = now - timedelta(seconds=limits.window_s)
    rows = list(session.execute(select(SigninThrottle).where(
        SigninThrottle.window_count > 0, SigninThrottle.window_start <= closed)).scalars())
    for row in rows:
        _ledger_window(session, row, now)
    forgotten = now - timedelta(seconds=limits.forget_s)
    session.execute(delete(SigninThrottle).where(
        SigninThrottle.locked_at.is_(None), SigninThrottle.window_count == 0,
        or_(SigninThrottle.last_failure_at.is_(None),
            SigninThrottle.last_failure_at < forgotten))
        .execution_options(synchronize_session=False))
    return len(rows)


def record_success(session: Session, keys: list[str], now: datetime, limits: Limits) -> None:
    """A good password: take back the attempt counted up front, ledger the account's open
    window now and forget its failures (the address keeps its earlier count, so one good
    account cannot launder guesses at others)."""
    for key in keys:
        refund(session, key, limits)
    row = session.get(SigninThrottle, keys[0]) if keys and keys[0].startswith(USER) else None
    if row is not None:
        _ledger_window(session, row, now)
        session.delete(row)


def locked_names(session: Session) -> set[str]:
    rows = session.execute(select(SigninThrottle.key).where(
        SigninThrottle.locked_at.is_not(None), SigninThrottle.key.startswith(USER))).scalars()
    return {k[len(USER):] for k in rows}


def unlock(session: Session, name: str, now: datetime, *, actor: str) -> bool:
    """Lift a lock-out or back-off on an account (ledgered); False when nothing held it."""
    row = session.get(SigninThrottle, user_key(name))
    blocked = _aware(row.blocked_until) if row is not None else None
    if row is None or (row.locked_at is None and (blocked is None or blocked <= now)):
        return False
    _ledger_window(session, row, now)
    session.delete(row)
    ledger.append(session, "signin.unlocked", {"user": name, "by": actor}, actor=actor)
    return True
