"""Retention: purge probe images and result sets when policy says, without breaking the chain.
Result sets live in the search's ledger entry; purging redacts that field (ledger.redact)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from faceledger import ledger
from faceledger.accounts import Principal
from faceledger.core import Faceledger
from faceledger.db.schema import Search
from faceledger.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from faceledger.roles import Role, require


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def purge_search(app: Faceledger, search_id: int, reason: str, actor: str | None,
                 probe: bool = True, results: bool = True) -> None:
    """Remove a search's probe image/template and/or its result set; ledgered."""
    delete_file: str | None = None
    with app.db.write() as s:
        row = s.get(Search, search_id)
        if row is None:
            raise NotFoundError(f"no search {search_id}")
        now = datetime.now(UTC)
        if probe and row.probe_purged_at is None:
            delete_file = row.probe_path
            row.probe_path, row.probe_embedding, row.probe_purged_at = None, None, now
            ledger.append(s, "retention.probe_purged", {"search_id": row.id, "reason": reason},
                          actor=actor, case_ref=row.case_ref)
        if results and row.results_purged_at is None and row.status == "done":
            ledger.redact(s, row.ledger_seq, ["candidates"], reason, actor)
            row.results_purged_at = now
        if delete_file:
            still_used = s.execute(select(Search.id).where(
                Search.probe_path == delete_file, Search.id != row.id)).first()
            if still_used:
                delete_file = None
    if delete_file:
        app.files.delete(delete_file)


def run_retention(app: Faceledger, actor: str | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """Apply the policy's retention periods and the urgent-authorisation window."""
    policy = app.policy()
    now = now or datetime.now(UTC)
    done: dict[str, list[int]] = {"probes": [], "results": [], "unauthorised": []}
    with app.db.read() as s:
        rows = s.execute(select(Search).where(
            (Search.probe_purged_at.is_(None)) | (Search.results_purged_at.is_(None)))).scalars(
        ).all()
    for row in rows:
        started = _aware(row.started_at)
        if (row.urgent and not row.authorisation_ref and row.auth_deadline is not None
                and _aware(row.auth_deadline) < now):
            purge_search(app, row.id, "authorisation reference not added within the urgent "
                         f"window ({policy.authorisation.urgent_window_hours:g} h)", actor)
            done["unauthorised"].append(row.id)
            continue
        days_p, days_r = policy.retention.probe_images_days, policy.retention.result_sets_days
        if (days_p is not None and row.probe_purged_at is None
                and started < now - timedelta(days=days_p)):
            purge_search(app, row.id, f"probe retention ({days_p:g} days)", actor,
                         results=False)
            done["probes"].append(row.id)
        if (days_r is not None and row.results_purged_at is None and row.status == "done"
                and started < now - timedelta(days=days_r)):
            purge_search(app, row.id, f"result-set retention ({days_r:g} days)", actor,
                         probe=False)
            done["results"].append(row.id)
    return done


def add_authorisation(app: Faceledger, principal: Principal, search_id: int, ref: str) -> None:
    """Add the authorisation reference an urgent search went ahead without."""
    if not ref.strip():
        raise ValidationError("give the authorisation reference")
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
