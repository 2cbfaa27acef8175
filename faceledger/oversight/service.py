"""The oversight report as a service, for the CLI, the API and the web dashboard: the permission
check, the period rule (``period.resolve``) and the report's read transaction, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from faceledger.db.schema import User
from faceledger.errors import ConfigError, FaceledgerError, ValidationError
from faceledger.governance import checkpoints, signing_key, witnesses
from faceledger.oversight.period import Period, resolve, today
from faceledger.oversight.report import OversightReport, build_report
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

USER_MAX = 120
WITNESS_STALE = timedelta(days=1)  # a witness silent longer than this is warned about


@dataclass(frozen=True)
class PeriodReport:
    report: OversightReport
    period: Period


@dataclass(frozen=True)
class Dashboard:
    """The auditors' page: the users to choose from, and the report or why there is none."""

    users: list[str]
    timezone: str
    today: date
    result: PeriodReport | None
    error: FaceledgerError | None


def oversight_report(app: Faceledger, principal: Principal, date_from: str | None,
                     date_to: str | None, user: str | None = None) -> PeriodReport:
    """The report for whole local days [from, to] (default: the last 90 days), optionally for
    one user. A bad period is a ValidationError naming the field ('from' or 'to')."""
    require(principal.role, "reports.read", principal.name)
    return _report(app, date_from, date_to, user)


def _report(app: Faceledger, date_from: str | None, date_to: str | None,
            user: str | None) -> PeriodReport:
    if user is not None and len(user) > USER_MAX:
        raise ValidationError(f"'user' is too long ({USER_MAX} characters at most)",
                              field="user")
    policy = app.policy()
    p = resolve(date_from, date_to, policy.oversight.timezone)
    with app.db.read() as s:
        rep = build_report(s, start=p.start, end=p.end, user=user, policy=policy,
                           period_label=p.label)
    rep.transparency = transparency(app)
    return PeriodReport(rep, p)


def dashboard(app: Faceledger, principal: Principal, date_from: str, date_to: str,
              user: str) -> Dashboard:
    """The report for the dashboard; a refused period or unknown user comes back as
    ``error`` (the page shows it with the form), a refused caller raises."""
    require(principal.role, "reports.read", principal.name)
    tz = app.policy().oversight.timezone
    with app.db.read() as s:
        users = list(s.execute(select(User.name).order_by(User.name)).scalars())
    try:
        result = _report(app, date_from, date_to, user or None)
    except FaceledgerError as exc:
        return Dashboard(users, tz, today(tz), None, exc)
    return Dashboard(users, tz, today(tz), result, None)


def published_key(app: Faceledger) -> dict[str, Any]:
    """The log's public identity (origin, vkey, key id) for pages and answers, with
    ``problem`` set (and the rest None) when there is no usable key. Never makes a key."""
    none: dict[str, Any] = {"origin": None, "vkey": None, "key_id": None}
    if not signing_key.key_path(app.settings).exists():
        return {**none, "problem": "the log has no signing key yet: the first checkpoint "
                "(`faceledger ledger checkpoint`) makes one"}
    try:
        key = checkpoints.key_of(app)
    except ConfigError as exc:
        return {**none, "problem": exc.message}
    return {"origin": key.origin, "vkey": key.vkey, "key_id": key.key_id, "problem": None}


def log_key(app: Faceledger, principal: Principal) -> dict[str, Any]:
    """``published_key`` as a service: any signed-in user (the key is meant to be public)."""
    require(principal.role, "ledger.checkpoint.read", principal.name)
    return published_key(app)


def transparency(app: Faceledger, now: datetime | None = None) -> dict[str, Any]:
    """The transparency log as an overseer checks it: the log key, the latest signed
    checkpoint, each witness (when it last co-signed, the largest size it vouched for, how
    many checkpoints) and warnings: no key, no checkpoint, no witness, a witness silent for
    more than a day. For callers that already checked their permission."""
    now = now or datetime.now(UTC)
    key = published_key(app)
    with app.db.read() as s:
        cp = checkpoints.latest(s)
        latest = None if cp is None else {
            "size": cp.size, "root_hash": cp.root_hash, "reason": cp.reason,
            "created_at": _utc(cp.created_at).isoformat(),
            "cosignatures": len(checkpoints.cosignatures(s, cp.id))}
        count = checkpoints.checkpoint_count(s)
    rows = witnesses.witness_rows(app)
    warnings = [key["problem"]] if key["problem"] else []
    if latest is None:
        warnings.append("no checkpoint of the ledger has been signed yet, so nothing outside "
                        "this server can hold it to its history: `faceledger ledger checkpoint`")
    if not rows:
        warnings.append("no witness has co-signed a checkpoint: nobody outside the operator "
                        "vouches that the ledger was not cut or rewritten. An oversight body "
                        "runs `faceledger ledger witness` from another machine")
    for w in rows:
        seen = datetime.fromisoformat(w["last_signed_at"]) if w["last_signed_at"] else None
        w["stale"] = seen is None or now - seen > WITNESS_STALE
        if w["stale"]:
            warnings.append(f"witness {w['witness']} last co-signed "
                            f"{_ago(now - seen) + ' ago' if seen else 'never'}: more than a "
                            "day without an outside check of the ledger")
    return {"log_key": key, "latest_checkpoint": latest, "checkpoints": count,
            "witnesses": rows, "warnings": warnings, "checked_at": now.isoformat()}


def ledger_transparency(app: Faceledger, principal: Principal) -> dict[str, Any]:
    """``transparency`` for the ledger page (auditors and admins)."""
    require(principal.role, "ledger.read", principal.name)
    return transparency(app)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ago(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"
