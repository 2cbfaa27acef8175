"""Retention: purge probe images and result sets when policy says, without breaking the chain.
Result sets live in the search's ledger entry; purging redacts that field (ledger.redact)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import Search
from faceledger.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from faceledger.governance import ledger
from faceledger.roles import Role, require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger
    from faceledger.governance.policy import Policy


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _purge(s: Session, row: Search, reason: str, actor: str | None, probe: bool = True,
           results: bool = True) -> str | None:
    """Remove a search's probe image/template and/or its result set, in the caller's write
    transaction; ledgered. Returns the probe file to delete once that commits, if any."""
    delete_file: str | None = None
    now = datetime.now(UTC)
    if probe and row.probe_purged_at is None:
        delete_file = row.probe_path
        row.probe_path, row.probe_embedding, row.probe_purged_at = None, None, now
        ledger.append(s, "retention.probe_purged", {"search_id": row.id, "reason": reason},
                      actor=actor, case_ref=row.case_ref)
    if results and row.results_purged_at is None and row.status == "done":
        ledger.redact(s, row.ledger_seq, ["candidates"], reason, actor)
        row.results_purged_at = now
    if delete_file and s.execute(select(Search.id).where(
            Search.probe_path == delete_file, Search.id != row.id)).first():
        delete_file = None  # another search holds the same probe
    return delete_file


def _due(row: Search, policy: Policy, now: datetime) -> list[tuple[str, str, bool, bool]]:
    """What the policy says is due for this search: (list, reason, probe?, results?)."""
    if (row.urgent and not row.authorisation_ref and row.auth_deadline is not None
            and _aware(row.auth_deadline) < now):
        return [("unauthorised", "authorisation reference not added within the urgent "
                 f"window ({policy.authorisation.urgent_window_hours:g} h)", True, True)]
    started = _aware(row.started_at)
    due = []
    days_p, days_r = policy.retention.probe_images_days, policy.retention.result_sets_days
    if (days_p is not None and row.probe_purged_at is None
            and started < now - timedelta(days=days_p)):
        due.append(("probes", f"probe retention ({days_p:g} days)", True, False))
    if (days_r is not None and row.results_purged_at is None and row.status == "done"
            and started < now - timedelta(days=days_r)):
        due.append(("results", f"result-set retention ({days_r:g} days)", False, True))
    return due


def run_retention(app: Faceledger, principal: Principal,
                  now: datetime | None = None) -> dict[str, list[int]]:
    """Apply the policy's retention periods and the urgent-authorisation window. Each search
    is re-read, judged and purged in one write transaction, so an authorisation added
    meanwhile is seen."""
    require(principal.role, "retention.run", principal.name)
    policy = app.policy()
    now = now or datetime.now(UTC)
    done: dict[str, list[int]] = {"probes": [], "results": [], "unauthorised": []}
    with app.db.read() as s:
        ids = list(s.execute(select(Search.id).where(
            (Search.probe_purged_at.is_(None)) | (Search.results_purged_at.is_(None)))
            .order_by(Search.id)).scalars())
    for search_id in ids:
        files: list[str] = []
        with app.db.write() as s:
            row = s.get(Search, search_id)
            if row is None:  # erased meanwhile
                continue
            for what, reason, probe, results in _due(row, policy, now):
                if (file := _purge(s, row, reason, principal.name, probe, results)):
                    files.append(file)
                done[what].append(search_id)
        for rel in files:
            app.files.delete(rel)
    return done


def add_authorisation(app: Faceledger, principal: Principal, search_id: int, ref: str) -> None:
    """Add the authorisation reference an urgent search went ahead without."""
    if not ref.strip():
        raise ValidationError("give the authorisation reference")
    if len(ref.strip()) > 200:
        raise ValidationError("the authorisation reference is too long (200 characters at most)")
    require(principal.role, "searches.read", principal.name)
    with app.db.write() as s:
        row = s.get(Search, search_id)
        if row is None:
            raise NotFoundError(f"no search {search_id}")
        if row.user_id != principal.user_id and principal.role != Role.supervisor:
            raise PermissionDeniedError("only the searcher or a supervisor may add it")
        if row.results_purged_at is not None:
            raise ConflictError("too late: this search's results were already purged")
        row.authorisation_ref = ref.strip()
        ledger.append(s, "search.authorised", {"search_id": row.id, "authorisation_ref": ref,
                                               "by": principal.name},
                      actor=principal.name, case_ref=row.case_ref)
