"""Opening a face: gallery images, thumbnails, face and image records and probe photos are
biometric data, served only within a purpose, and every opening is ledgered.

* A gallery face (or the image holding it) is opened within a search that returned it: the
  caller names the search (``?search=ID`` in the API), must be allowed to read it, and the face
  must be one of its stored candidates (a purged result set opens nothing).
* A probe photo is opened within its own search. A search held for approval shows its probe
  only to its searcher and to supervisors (the approval task).
* Opening faces of someone else's search (a second reviewer, a supervisor) is allowed, as
  reading that search is, and the ledger names the searcher and the task.

Entries are batched per (user, search, window): the first opening writes one ``faces.opened``
entry (who, role, which search and whose, the task, what was opened first) that covers the
search's faces (its candidates, listed, and its probe) for ``settings.face_open_window_s``
seconds; openings it covers add nothing, so a results page with 20 thumbnails is one entry, not
20. The next opening after the window writes a new one. The entry is written before anything is
served: no entry, no face."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerEntry
from faceledger.errors import NotFoundError, PermissionDeniedError, ValidationError
from faceledger.gallery import service as gallery
from faceledger.gallery.service import StoredFile
from faceledger.governance import ledger
from faceledger.roles import Role, require
from faceledger.search.results import search_row, stored_candidates

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

KIND = "faces.opened"
T = TypeVar("T")


@dataclass(frozen=True)
class Purpose:
    """The search a face is opened within, as the caller may see it."""

    search_id: int
    task: str  # search (own) | review (someone else's) | approval (held, a supervisor)
    searcher: str
    case: str
    faces: list[int]  # its stored candidates (empty: held, refused or purged)
    probe: bool  # its probe photo is kept


def _purpose(s: Session, principal: Principal, search_id: int | None) -> Purpose:
    if search_id is None:
        raise ValidationError("faces are opened only within a search that returned them: name "
                              "the search (?search=ID)", field="search")
    row = search_row(s, search_id)
    own = row.user_id == principal.user_id
    if row.status == "pending" and not own and principal.role != Role.supervisor:
        raise PermissionDeniedError(f"search {search_id} is held for approval: only its "
                                    "searcher and supervisors may see its probe",
                                    rule="faces.purpose")
    task = "search" if own else "approval" if row.status == "pending" else "review"
    faces = [int(c["face_id"]) for c in stored_candidates(s, row)] if row.status == "done" else []
    return Purpose(row.id, task, row.user.name, row.case_ref, faces, bool(row.probe_path))


def _covered(s: Session, principal: Principal, search_id: int, window_s: int) -> bool:
    """A ``faces.opened`` entry by this user for this search within the window."""
    since = (datetime.now(UTC) - timedelta(seconds=window_s)).isoformat(timespec="microseconds")
    payloads = s.execute(select(LedgerEntry.payload).where(
        LedgerEntry.kind == KIND, LedgerEntry.actor == principal.name, LedgerEntry.ts >= since)
        .order_by(LedgerEntry.seq.desc()).limit(1000)).scalars()
    return any(json.loads(p or "{}").get("search_id") == search_id for p in payloads)


def _open(app: Faceledger, principal: Principal, search_id: int | None, what: dict[str, Any],
          read: Callable[[Session, Purpose], T]) -> T:
    """Check the purpose and read (``read`` raises when the purpose does not cover the face);
    ledger the opening unless a recent entry covers it; then the caller serves the result."""
    window = app.settings.face_open_window_s
    with app.db.read() as s:
        purpose = _purpose(s, principal, search_id)
        value = read(s, purpose)
        if _covered(s, principal, purpose.search_id, window):
            return value
    with app.db.write() as s:  # checked again where it is written (BEGIN IMMEDIATE)
        purpose = _purpose(s, principal, search_id)
        value = read(s, purpose)
        if not _covered(s, principal, purpose.search_id, window):
            ledger.append(s, KIND, {
                "search_id": purpose.search_id, "searcher": purpose.searcher,
                "by": principal.name, "role": principal.role, "task": purpose.task,
                "first": what, "faces": purpose.faces, "probe": purpose.probe,
                "window_s": window}, actor=principal.name, case_ref=purpose.case)
    return value


def _candidate(p: Purpose, face_id: int) -> None:
    if face_id not in p.faces:
        raise NotFoundError(f"face {face_id} is not among the results of search {p.search_id}"
                            " (or they were purged)")


def _candidate_image(s: Session, p: Purpose, image_id: int) -> None:
    if not set(gallery.faces_of_image(s, image_id)) & set(p.faces):
        raise NotFoundError(f"image {image_id} holds none of the results of search "
                            f"{p.search_id} (or they were purged)")


def face_detail(app: Faceledger, principal: Principal, face_id: int,
                search_id: int | None) -> dict[str, Any]:
    """A face (box, landmarks, quality, model) with its image and sources, within a search."""
    require(principal.role, "faces.read", principal.name)

    def read(s: Session, p: Purpose) -> dict[str, Any]:
        _candidate(p, face_id)
        return gallery.face_record(s, face_id)
    return _open(app, principal, search_id, {"face": face_id}, read)


def image_detail(app: Faceledger, principal: Principal, image_id: int,
                 search_id: int | None) -> dict[str, Any]:
    """An image holding a candidate of the search, with its sources."""
    require(principal.role, "faces.read", principal.name)

    def read(s: Session, p: Purpose) -> dict[str, Any]:
        _candidate_image(s, p, image_id)
        return gallery.image_record(s, image_id)
    return _open(app, principal, search_id, {"image": image_id}, read)


def face_thumbnail(app: Faceledger, principal: Principal, face_id: int,
                   search_id: int | None) -> StoredFile:
    """A candidate's thumbnail (JPEG), within the search that returned it."""
    require(principal.role, "faces.read", principal.name)

    def read(s: Session, p: Purpose) -> str:
        _candidate(p, face_id)
        return gallery.thumbnail_path(s, face_id)
    path = _open(app, principal, search_id, {"thumbnail": face_id}, read)
    return StoredFile(app.files.read(path), path)


def image_file(app: Faceledger, principal: Principal, image_id: int,
               search_id: int | None) -> StoredFile:
    """The original file of an image holding a candidate of the search, as stored."""
    require(principal.role, "faces.read", principal.name)

    def read(s: Session, p: Purpose) -> str:
        _candidate_image(s, p, image_id)
        return gallery.image_path(s, image_id)
    path = _open(app, principal, search_id, {"image_file": image_id}, read)
    return StoredFile(app.files.read(path), path)


def probe_photo(app: Faceledger, principal: Principal, search_id: int) -> StoredFile:
    """A search's probe photo as uploaded (its searcher, a reviewer of a done search, or a
    supervisor deciding on a held one); ledgered like any face."""
    require(principal.role, "searches.read", principal.name)

    def read(s: Session, p: Purpose) -> str:
        path = search_row(s, p.search_id).probe_path
        if not path:
            raise NotFoundError("the probe photo was not kept (or was purged)")
        return path
    path = _open(app, principal, search_id, {"probe": search_id}, read)
    return StoredFile(app.files.read(path), path)
