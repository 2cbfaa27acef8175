"""Reading searches back, and two-person review of their candidates."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerEntry, Review, Search
from faceledger.errors import NotFoundError, ValidationError
from faceledger.faces.probefaces import number_of
from faceledger.gallery.repository import face_sources
from faceledger.governance import ledger
from faceledger.roles import Role, require
from faceledger.search.bands import bands_at, duplicate_marks

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger
    from faceledger.db.engine import Database
    from faceledger.settings import Settings

DECISIONS = ("confirmed", "rejected")
NOTE_MAX = 2000


@dataclass(frozen=True)
class CandidateState:
    status: str  # unreviewed | confirmed_once | confirmed | rejected | disputed
    confirmations: list[str]
    rejections: list[str]
    history: tuple[dict[str, str], ...] = ()  # every review: user, decision, note, at
    repeat: bool = False  # review() only: the verdict repeated the person's own latest one


def search_row(session: Session, search_id: int) -> Search:
    row = session.get(Search, search_id)
    if row is None:
        raise NotFoundError(f"no search {search_id}")
    return row


@dataclass(frozen=True)
class SearchSummary:
    """A line of the list of searches (the API's listing omits ``status``)."""

    id: int
    user: str
    case: str
    purpose: str
    offence: str
    mode: str
    results: int
    status: str  # done | pending | refused
    started_at: str  # ISO 8601
    ledger_seq: int


def list_searches(app: Faceledger, principal: Principal, limit: int = 50,
                  mine: bool = True) -> list[SearchSummary]:
    """The caller's searches, newest first (supervisors may list everyone's); ``limit`` is
    kept within 1-500."""
    require(principal.role, "searches.read", principal.name)
    q = select(Search).order_by(Search.id.desc()).limit(min(max(limit, 1), 500))
    if mine or principal.role != Role.supervisor:
        q = q.where(Search.user_id == principal.user_id)
    with app.db.read() as s:
        return [SearchSummary(r.id, r.user.name, r.case_ref, r.purpose, r.offence, r.mode,
                              r.result_count, r.status, r.started_at.isoformat(), r.ledger_seq)
                for r in s.execute(q).scalars()]


def stored_candidates(session: Session, search: Search) -> list[dict[str, Any]]:
    """The result set as ledgered (empty once purged)."""
    entry = session.get(LedgerEntry, search.ledger_seq)
    if entry is None or entry.payload is None:
        return []
    payload = json.loads(entry.payload)
    return list(payload.get("candidates", []))


def fold_reviews(rows: Iterable[Review]) -> dict[tuple[int, int], CandidateState]:
    """(search_id, face_id) -> state, from review rows in the order they were made."""
    out: dict[tuple[int, int], tuple[list[str], list[str]]] = {}
    history: dict[tuple[int, int], list[dict[str, str]]] = {}
    for r in rows:
        key = (r.search_id, r.face_id)
        history.setdefault(key, []).append({
            "user": r.user.name, "decision": r.decision, "note": r.note,
            "at": r.created_at.isoformat()})
        conf, rej = out.setdefault(key, ([], []))
        # A person's latest verdict counts; earlier ones stay in the ledger.
        for lst in (conf, rej):
            if r.user.name in lst:
                lst.remove(r.user.name)
        (conf if r.decision == "confirmed" else rej).append(r.user.name)
    result = {}
    for key, (conf, rej) in out.items():
        if rej and conf:
            status = "disputed"
        elif rej:
            status = "rejected"
        elif len(conf) >= 2:
            status = "confirmed"
        elif conf:
            status = "confirmed_once"
        else:
            status = "unreviewed"
        result[key] = CandidateState(status, conf, rej, tuple(history[key]))
    return result


def states(session: Session, search_id: int) -> dict[int, CandidateState]:
    rows = session.execute(select(Review).where(Review.search_id == search_id)
                           .order_by(Review.id)).scalars()
    return {face_id: st for (_, face_id), st in fold_reviews(rows).items()}


def detail_of(session: Session, s: Search, settings: Settings) -> dict[str, Any]:
    """A search as stored, each candidate with its band (from the calibration in force when
    the search ran, and ``settings``' band rates) and its probe-image/duplicate marks."""
    cands = stored_candidates(session, s)
    faces = face_sources(session, [c["face_id"] for c in cands])
    st = states(session, s.id)
    bands = bands_at(session, s.model_id, s.finished_at or s.started_at, settings)
    rows = []
    for c in cands:
        f = faces.get(c["face_id"])
        state = st.get(c["face_id"], CandidateState("unreviewed", [], []))
        item: dict[str, Any] = {"rank": c["rank"], "face_id": c["face_id"],
                                "similarity": c["score"], "erased": f is None,
                                "band": bands.band(c["score"]) if bands else None,
                                "probe_image": False, "duplicate_of": None,
                                "review": {"status": state.status,
                                           "confirmed_by": state.confirmations,
                                           "rejected_by": state.rejections,
                                           "history": list(state.history)}}
        if f is not None:
            item.update({
                "image_id": f.image_id, "image_sha256": f.image_sha256,
                "collection": f.collection, "box": f.box, "image_size": f.image_size,
                **f.shown(),
            })
        rows.append(item)
    kept = [r for r in rows if not r["erased"]]
    for r, (is_probe, dup) in zip(kept, duplicate_marks(
            s.probe_sha256, [(r["rank"], r["image_id"], r["image_sha256"]) for r in kept]),
            strict=True):
        r["probe_image"], r["duplicate_of"] = is_probe, dup
    return {"search_id": s.id, "user": s.user.name, "case": s.case_ref, "purpose": s.purpose,
            "offence": s.offence, "legal_basis": s.legal_basis, "mode": s.mode,
            "threshold": s.threshold, "model_id": s.model_id, "top_k": s.top_k,
            "started_at": s.started_at.isoformat(), "ledger_seq": s.ledger_seq,
            "probe_box": s.probe_box, "face": number_of(s.face_index),
            "probe_sha256": s.probe_sha256, "bands": bands.as_dict() if bands else None,
            "candidates": rows}


def search_detail(app: Faceledger, principal: Principal, search_id: int) -> dict[str, Any]:
    """A search as stored (see ``_detail``); opening someone else's is ledgered."""
    require(principal.role, "searches.read", principal.name)
    with app.db.read() as s:
        detail = detail_of(s, search_row(s, search_id), app.settings)
    note_view(app.db, principal, detail)
    return detail


def note_view(db: Database, principal: Principal, detail: dict[str, Any]) -> None:
    """Opening someone else's search (results, compare view) is itself ledgered."""
    if detail["user"] == principal.name:
        return
    with db.write() as s:
        ledger.append(s, "search.viewed", {"search_id": detail["search_id"],
                                           "searcher": detail["user"], "by": principal.name,
                                           "role": principal.role},
                      actor=principal.name, case_ref=detail["case"])


def review(app: Faceledger, principal: Principal, search_id: int, face_id: int,
           decision: str, note: str) -> CandidateState:
    """Confirm or reject a candidate; its state after. The checks and the write share one
    write transaction (BEGIN IMMEDIATE), so one verdict per person holds under concurrency."""
    require(principal.role, "reviews.write", principal.name)
    if decision not in DECISIONS:
        raise ValidationError("decision must be 'confirmed' or 'rejected'")
    if len(note) > NOTE_MAX:
        raise ValidationError(f"note is too long ({NOTE_MAX} characters at most)")
    with app.db.write() as s:
        return _review(s, principal, search_id, face_id, decision, note)


def _review(session: Session, principal: Principal, search_id: int, face_id: int,
            decision: str, note: str) -> CandidateState:
    # Reviewers need not be the searcher, but must be allowed to see the search.
    s = search_row(session, search_id)
    if face_id not in {c["face_id"] for c in stored_candidates(session, s)}:
        raise NotFoundError(f"face {face_id} is not a candidate of search {search_id}")
    # One verdict per person: repeating one's own latest verdict records nothing (no second
    # confirmation, no second ledger entry). The write transaction (BEGIN IMMEDIATE) makes
    # this check and the insert below atomic.
    latest = session.execute(select(Review.decision).where(
        Review.search_id == search_id, Review.face_id == face_id,
        Review.user_id == principal.user_id).order_by(Review.id.desc()).limit(1)
    ).scalar_one_or_none()
    if latest == decision:
        return replace(states(session, search_id)[face_id], repeat=True)
    entry = ledger.append(session, "review", {
        "search": search_id, "face_id": face_id, "decision": decision, "note": note,
        "user": principal.name, "role": principal.role}, actor=principal.name, case_ref=s.case_ref)
    session.add(Review(search_id=search_id, face_id=face_id, user_id=principal.user_id,
                       decision=decision, note=note, created_at=datetime.now(UTC),
                       ledger_seq=entry.seq))
    session.flush()
    return states(session, search_id)[face_id]
