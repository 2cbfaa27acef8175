"""The oversight report as a service, for the CLI, the API and the web dashboard: the permission
check, the period rule (``period.resolve``) and the report's read transaction, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select

from faceledger.db.schema import User
from faceledger.errors import FaceledgerError, ValidationError
from faceledger.oversight.period import Period, resolve, today
from faceledger.oversight.report import OversightReport, build_report
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

USER_MAX = 120


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
