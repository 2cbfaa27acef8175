"""The oversight report: since when, by whom, for what, with what result, and misuse flags.

Counts cover every search started in [start, end) (any status: done, pending, refused).
Outcome figures cover completed ("done") searches; each search's latest outcome row counts,
whenever it was recorded. Days and hours are local to the policy's oversight timezone."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerEntry, Search, User
from faceledger.errors import NotFoundError, ValidationError
from faceledger.oversight.flags import Flag, FlagConfig, compute_flags
from faceledger.oversight.records import (
    CHARGED,
    NEGATIVE,
    OUTCOME_RESULTS,
    POSITIVE,
    SearchRecord,
    as_utc,
    iso,
    load_searches,
)
from faceledger.oversight.summary import answers

if TYPE_CHECKING:
    from faceledger.governance.policy import Policy


@dataclass(frozen=True)
class UserUsage:
    name: str
    role: str
    unit: str | None
    first_search: datetime
    last_search: datetime
    searches: int
    cases: int
    searches_per_case: float

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "unit": self.unit,
                "first_search": iso(self.first_search), "last_search": iso(self.last_search),
                "searches": self.searches, "cases": self.cases,
                "searches_per_case": self.searches_per_case}


@dataclass
class OversightReport:
    start: datetime
    end: datetime
    user: str | None
    timezone: str
    generated_at: datetime
    first_search_ever: datetime | None
    first_search_ever_by: str | None
    first_search_in_period: datetime | None
    last_search_in_period: datetime | None
    searches: list[SearchRecord]
    users: list[UserUsage]
    per_day: dict[str, int]
    per_hour: dict[int, int]
    per_purpose: dict[str, int]
    per_offence: dict[str, int]
    per_case: dict[str, int]
    per_status: dict[str, int]
    completed: int
    outcomes: dict[str, int]  # every result, plus "none"
    outcome_rates: dict[str, float]  # of completed searches
    no_outcome_share: float
    role_played: dict[str, Any]
    charged: list[dict[str, Any]]
    no_outcome: list[dict[str, Any]]
    refused_attempts: list[dict[str, Any]]
    refused_by_rule: dict[str, int]
    signin_failures: list[dict[str, Any]]
    approvals: dict[str, list[dict[str, Any]]]
    flags: list[Flag] = field(default_factory=list)
    working_hours: tuple[int, int] = (7, 19)
    working_days: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    period_label: str | None = None  # e.g. "the default: the last 90 days"
    # The transparency log as of the report (``service.transparency``): log key, latest
    # checkpoint, witnesses, warnings. None when built without the application (tests).
    transparency: dict[str, Any] | None = None

    @property
    def total(self) -> int:
        return len(self.searches)

    def answers(self) -> list[str]:
        """Plain sentences: since when, by whom, what role it played, whether anyone was
        charged, and what was flagged."""
        return answers(self)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": {"start": iso(self.start), "end": iso(self.end), "end_exclusive": True,
                       "timezone": self.timezone, "working_hours": list(self.working_hours),
                       "working_days": self.working_days, "label": self.period_label},
            "user": self.user, "generated_at": iso(self.generated_at),
            "answers": self.answers(),
            "usage": {"first_search_ever": iso(self.first_search_ever),
                      "first_search_ever_by": self.first_search_ever_by,
                      "first_search_in_period": iso(self.first_search_in_period),
                      "last_search_in_period": iso(self.last_search_in_period),
                      "searches": self.total, "completed": self.completed,
                      "per_status": self.per_status},
            "users": [u.as_dict() for u in self.users],
            "per_day": self.per_day, "per_hour": {str(h): n for h, n in self.per_hour.items()},
            "per_purpose": self.per_purpose, "per_offence": self.per_offence,
            "per_case": self.per_case,
            "outcomes": {"counts": self.outcomes, "rates": self.outcome_rates,
                         "no_outcome_share": self.no_outcome_share,
                         "role_played": self.role_played, "charged": self.charged,
                         "no_outcome": self.no_outcome},
            "refused_attempts": self.refused_attempts, "refused_by_rule": self.refused_by_rule,
            "signin_failures": self.signin_failures, "approvals": self.approvals,
            "flags": [f.as_dict() for f in self.flags],
            "searches": [r.as_dict() for r in self.searches],
            "transparency_log": self.transparency,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False)


def _share(n: int, d: int) -> float:
    return round(n / d, 4) if d else 0.0


def _count(values: list[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))


def _users(records: list[SearchRecord]) -> list[UserUsage]:
    by: dict[str, list[SearchRecord]] = {}
    for r in records:
        by.setdefault(r.user, []).append(r)
    out = [UserUsage(rs[0].user, rs[0].role, rs[0].unit, rs[0].started_at, rs[-1].started_at,
                     len(rs), len({r.case for r in rs}),
                     round(len(rs) / len({r.case for r in rs}), 4)) for rs in by.values()]
    return sorted(out, key=lambda u: (-u.searches, u.name))


def _ts(dt: datetime) -> str:
    """The ledger's own timestamp format (ISO 8601 UTC, microseconds), so text order is time
    order."""
    return as_utc(dt).isoformat(timespec="microseconds")


def _ledger(session: Session, kinds: tuple[str, ...], start: datetime | None = None,
            end: datetime | None = None) -> list[tuple[LedgerEntry, dict[str, Any]]]:
    q = select(LedgerEntry).where(LedgerEntry.kind.in_(kinds))
    if start is not None and end is not None:
        q = q.where(LedgerEntry.ts >= _ts(start), LedgerEntry.ts < _ts(end))
    out = []
    for e in session.execute(q.order_by(LedgerEntry.seq)).scalars():
        try:
            payload = json.loads(e.payload or "{}")
        except json.JSONDecodeError:
            payload = {}
        out.append((e, payload if isinstance(payload, dict) else {}))
    return out


def _refused(session: Session, start: datetime, end: datetime, user: str | None
             ) -> list[dict[str, Any]]:
    rows = []
    for e, p in _ledger(session, ("search.refused",), start, end):
        who = p.get("user", e.actor)
        if user is None or who == user:
            rows.append({"seq": e.seq, "ts": e.ts, "user": who, "case": p.get("case", e.case_ref),
                         "purpose": p.get("purpose"), "offence": p.get("offence"),
                         "code": p.get("code"), "rule": p.get("rule"), "reason": p.get("reason")})
    return rows


def _signins(session: Session, start: datetime, end: datetime, user: str | None
             ) -> list[dict[str, Any]]:
    """Failed sign-ins per account name (aggregated entries carry a ``count``; the per-address
    entries of the same failures are left out so nothing counts twice)."""
    return [{"seq": e.seq, "ts": e.ts, "user": p.get("user"), "count": int(p.get("count", 1))}
            for e, p in _ledger(session, ("signin.failed",), start, end)
            if "user" in p and (user is None or p.get("user") == user)]


def _approvals(session: Session, start: datetime, end: datetime,
               records: list[SearchRecord], user: str | None) -> dict[str, list[dict[str, Any]]]:
    reasons: dict[int, dict[str, Any]] = {}
    decisions = []
    for e, p in _ledger(session, ("search.approved", "search.approval_refused")):
        if e.kind == "search.approval_refused" and isinstance(p.get("search_id"), int):
            reasons[p["search_id"]] = {"by": p.get("by", e.actor), "reason": p.get("reason"),
                                       "ts": e.ts}
        if (_ts(start) <= e.ts < _ts(end)
                and (user is None or p.get("requested_by") == user)):
            decisions.append({"seq": e.seq, "ts": e.ts, "kind": e.kind,
                              "search_id": p.get("search_id"), "by": p.get("by", e.actor),
                              "requested_by": p.get("requested_by"), "reason": p.get("reason")})

    def row(r: SearchRecord) -> dict[str, Any]:
        return {"search_id": r.id, "user": r.user, "case": r.case, "purpose": r.purpose,
                "started_at": iso(r.started_at), "rules": r.approval_rules}

    return {
        "pending": [row(r) for r in records if r.status in ("pending", "approved")],
        "refused": [{**row(r), "refused_by": reasons.get(r.id, {}).get("by", r.approver),
                     "reason": reasons.get(r.id, {}).get("reason")}
                    for r in records if r.status == "refused"],
        "decisions": decisions,
    }


def _outcomes(records: list[SearchRecord]) -> tuple[int, dict[str, int], dict[str, Any]]:
    done = [r for r in records if r.completed]
    counts = {k: 0 for k in (*OUTCOME_RESULTS, "none")}
    for r in done:
        key = r.outcome if r.outcome is not None else "none"
        counts[key] = counts.get(key, 0) + 1
    recorded = len(done) - counts["none"]
    pos = sum(counts.get(k, 0) for k in POSITIVE)
    neg = sum(counts.get(k, 0) for k in NEGATIVE)
    lead = counts["lead_pursued"]
    role = {"completed": len(done), "with_outcome": recorded,
            "positive": pos, "negative": neg, "lead_pursued": lead, "no_outcome": counts["none"],
            "positive_share": _share(pos, len(done)), "negative_share": _share(neg, len(done)),
            "lead_pursued_share": _share(lead, len(done)),
            "positive_share_of_recorded": _share(pos, recorded),
            "negative_share_of_recorded": _share(neg, recorded)}
    return len(done), counts, role


def build_report(session: Session, *, start: datetime, end: datetime, user: str | None,
                 policy: Policy, flag_config: FlagConfig | None = None,
                 period_label: str | None = None) -> OversightReport:
    """Everything an overseer asks about the searches started in [start, end). Naive datetimes
    are taken as UTC. ``user`` narrows the report to one user (flags still compare them with
    all their peers)."""
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise ValidationError("the report period must end after it starts")
    if user is not None and session.execute(
            select(User.id).where(User.name == user)).first() is None:
        raise NotFoundError(f"no user {user!r}")
    tz = ZoneInfo(policy.oversight.timezone)
    everyone = load_searches(session, start, end)
    flags = compute_flags(everyone, policy.oversight, flag_config)
    records = [r for r in everyone if user is None or r.user == user]
    if user is not None:
        flags = [f for f in flags if f.user == user]
    first_q = select(Search.started_at, User.name).join(User, Search.user_id == User.id)
    if user is not None:
        first_q = first_q.where(User.name == user)
    first = session.execute(first_q.order_by(Search.started_at, Search.id).limit(1)).first()
    completed, counts, role = _outcomes(records)
    local = [r.started_at.astimezone(tz) for r in records]
    hours = Counter(t.hour for t in local)
    return OversightReport(
        start=start, end=end, user=user, timezone=policy.oversight.timezone,
        generated_at=datetime.now(UTC),
        first_search_ever=as_utc(first[0]) if first else None,
        first_search_ever_by=first[1] if first else None,
        first_search_in_period=records[0].started_at if records else None,
        last_search_in_period=max(r.started_at for r in records) if records else None,
        searches=records, users=_users(records),
        per_day=dict(sorted(Counter(t.date().isoformat() for t in local).items())),
        per_hour={h: hours.get(h, 0) for h in range(24)},
        per_purpose=_count([r.purpose for r in records]),
        per_offence=_count([r.offence for r in records]),
        per_case=_count([r.case for r in records]),
        per_status=_count([r.status for r in records]),
        completed=completed, outcomes=counts,
        outcome_rates={k: _share(v, completed) for k, v in counts.items() if k != "none"},
        no_outcome_share=_share(counts["none"], completed), role_played=role,
        charged=[{"search_id": r.id, "user": r.user, "case": r.case, "result": r.outcome,
                  "outcome_date": iso(r.outcome_date), "started_at": iso(r.started_at)}
                 for r in records if r.completed and r.outcome in CHARGED],
        no_outcome=[{"search_id": r.id, "user": r.user, "case": r.case, "purpose": r.purpose,
                     "started_at": iso(r.started_at), "result_count": r.result_count}
                    for r in records if r.completed and r.outcome is None],
        refused_attempts=(refused := _refused(session, start, end, user)),
        refused_by_rule=_count([str(x["rule"] or x["code"] or "unknown") for x in refused]),
        signin_failures=_signins(session, start, end, user),
        approvals=_approvals(session, start, end, records, user),
        flags=flags, working_hours=policy.oversight.working_hours,
        working_days=list(policy.oversight.working_days), period_label=period_label,
    )
