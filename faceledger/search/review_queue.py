"""The review queue: candidates one person has confirmed that wait for a second, different one.

Supervisors see every search's waiting candidates; investigators those of their own searches
(the same rule as the list of searches). A candidate the viewer confirmed is listed as waiting
for someone else and not counted: nobody can be their own second confirmation. Showing the
queue shows faces from other people's searches: each such search is ledgered as viewed, as
opening it would be (the count alone shows no face and is not)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from faceledger.db.schema import Face, Review, Search
from faceledger.errors import FaceledgerError
from faceledger.roles import Role, require
from faceledger.search.results import fold_reviews, note_view, stored_candidates

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger
    from faceledger.db.engine import Database


@dataclass(frozen=True)
class Waiting:
    search_id: int
    face_id: int
    case: str
    searcher: str
    confirmed_by: str
    confirmed_at: datetime
    note: str
    rank: int | None
    similarity: float | None
    yours: bool  # the viewer gave the one confirmation: someone else must give the second


def _reviews(principal: Principal) -> Select[Any]:
    """Reviews of live result sets the viewer may read (purged ones can no longer be reviewed)."""
    q = (select(Review).join(Search, Review.search_id == Search.id)
         .where(Search.status == "done", Search.results_purged_at.is_(None))
         .order_by(Review.id))
    if principal.role != Role.supervisor:
        q = q.where(Search.user_id == principal.user_id)
    return q


def _pending(session: Session, principal: Principal) -> list[tuple[int, int, str, Review]]:
    """(search_id, face_id, confirmer, their latest review) of each candidate confirmed once,
    rejected by nobody, and still in the gallery."""
    rows: list[Review] = list(session.execute(_reviews(principal)).scalars())
    last: dict[tuple[int, int, str], Review] = {(r.search_id, r.face_id, r.user.name): r
                                                for r in rows}
    once = [(sid, fid, st.confirmations[0])
            for (sid, fid), st in fold_reviews(rows).items() if st.status == "confirmed_once"]
    if not once:
        return []
    alive = set(session.execute(select(Face.id).where(
        Face.id.in_({fid for _, fid, _ in once}))).scalars())
    return [(sid, fid, who, last[(sid, fid, who)]) for sid, fid, who in once if fid in alive]


def waiting_count(app: Faceledger, principal: Principal) -> int:
    """How many candidates wait for this viewer's confirmation (0 for roles that cannot review;
    any signed-in user may ask)."""
    if principal.role not in (Role.investigator, Role.supervisor):
        return 0
    with app.db.read() as s:
        return sum(who != principal.name for _, _, who, _ in _pending(s, principal))


def nav_count(app: Faceledger, principal: Principal) -> int | None:
    """``waiting_count`` for the navigation: None when it cannot be had (a count is a hint;
    the page itself still renders)."""
    try:
        return waiting_count(app, principal)
    except (SQLAlchemyError, FaceledgerError):
        return None


def waiting(app: Faceledger, principal: Principal) -> list[Waiting]:
    """The queue, oldest confirmation first; the viewer's own confirmations last. Showing it
    ledgers the look at other people's searches."""
    require(principal.role, "reviews.write", principal.name)
    with app.db.read() as s:
        items = _waiting(s, principal)
    _note_views(app.db, principal, items)
    return items


def _waiting(session: Session, principal: Principal) -> list[Waiting]:
    out: list[Waiting] = []
    searches: dict[int, tuple[Search, dict[int, dict[str, Any]]]] = {}
    for sid, fid, who, r in _pending(session, principal):
        if sid not in searches:
            s = session.get(Search, sid)
            assert s is not None  # joined above
            searches[sid] = (s, {c["face_id"]: c for c in stored_candidates(session, s)})
        s, cands = searches[sid]
        c = cands.get(fid, {})
        out.append(Waiting(sid, fid, s.case_ref, s.user.name, who, r.created_at, r.note,
                           int(c["rank"]) if "rank" in c else None,
                           float(c["score"]) if "score" in c else None, who == principal.name))
    out.sort(key=lambda w: (w.yours, w.confirmed_at))
    return out


def _note_views(db: Database, principal: Principal, items: list[Waiting]) -> None:
    """Ledger the queue's look at other people's searches (``search.viewed``, once each)."""
    others = {w.search_id: w for w in items if w.searcher != principal.name}
    for w in others.values():
        note_view(db, principal, {"search_id": w.search_id, "user": w.searcher, "case": w.case})
