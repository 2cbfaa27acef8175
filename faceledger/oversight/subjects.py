"""Subject rights: opt out, erase, and "who searched for my face?"."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from faceledger.db.schema import Face, Image, LedgerEntry, Search
from faceledger.errors import NoFaceError, NotFoundError, ValidationError
from faceledger.faces.probefaces import choose_face, faces_json
from faceledger.gallery.optout import add_optout, optout_threshold
from faceledger.gallery.repository import bump_faces_version, faces_with_provenance
from faceledger.governance import ledger
from faceledger.roles import require
from faceledger.search.match import resolve_collections
from faceledger.search.outcomes import latest_outcome

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger
    from faceledger.faces.embed import Embedding

REFERENCE_MAX = 200


@dataclass(frozen=True)
class FoundFace:
    face_id: int
    image_id: int
    collection: str
    similarity: float
    thumbnail_path: str
    source_url: str | None = None  # the image's first source (erasure preview only)
    original_path: str | None = None


def check_reference(reference: str) -> str:
    """The request's reference, stripped: at most 200 characters (CLI, API and web alike)."""
    ref = reference.strip()
    if len(ref) > REFERENCE_MAX:
        raise ValidationError(f"the reference is too long ({REFERENCE_MAX} characters at most)",
                              field="reference")
    return ref


def check_face_number(face: int | None) -> None:
    """Face numbers are 1, 2, … left to right; None: the photo's only face."""
    if face is not None and face < 1:
        raise ValidationError("face numbers start at 1", field="face")


def photo_faces(app: Faceledger, principal: Principal, photo: bytes) -> dict[str, Any]:
    """The faces in a subject's photo, for the form's face picker: numbered 1, 2, … left to
    right, with their boxes. Only detects: compares nothing, looks at no gallery face."""
    require(principal.role, "subjects.manage", principal.name)
    pipe = app.pipeline()
    image = pipe.decode(photo)
    detections = pipe.detect(image)
    if not detections:
        raise NoFaceError("no face found in the subject's photo")
    return {"width": image.width, "height": image.height, "faces": faces_json(detections)}


def subject_embedding(app: Faceledger, photo: bytes, face: int | None) -> Embedding:
    """The embedding of the subject's face number ``face`` (1, 2, … left to right; None: the
    only face). Only that face is aligned and embedded."""
    check_face_number(face)
    pipe = app.pipeline()
    image = pipe.decode(photo)
    detections = pipe.detect(image)
    if not detections:
        raise NoFaceError("no face found in the subject's photo")
    detections, idx = choose_face(detections, face, "photo")
    return pipe.embed_detections(image, [detections[idx]], thumbnails=False).faces[0].embedding


def find_faces(app: Faceledger, query: Embedding, k: int = 500) -> list[FoundFace]:
    """Every gallery face at or above the conservative opt-out threshold."""
    threshold = optout_threshold(app, query.model_id)
    cols = resolve_collections(app, query.model_id, None)
    hits: list[tuple[float, int, str]] = []
    for col_id, name, count in cols:
        if count:
            scores, ids = app.indexes.search(query.model_id, col_id, query.vector,
                                             min(k, count))
            hits += [(float(sc), int(i), name) for sc, i in zip(scores, ids, strict=True)
                     if i >= 0 and sc >= threshold]
    with app.db.read() as s:
        faces = {f.id: f for f in s.execute(
            select(Face).where(Face.id.in_([h[1] for h in hits]))).scalars()}
    return [FoundFace(fid, faces[fid].image_id, name, round(sc, 6), faces[fid].thumbnail_path)
            for sc, fid, name in sorted(hits, reverse=True) if fid in faces]


def erase_preview(app: Faceledger, principal: Principal, photo: bytes,
                  face: int | None = None, *, reference: str | None = None) -> list[FoundFace]:
    """The faces an erasure would remove (most similar first), each with its image's first
    source, for the operator to confirm. Reads only; nothing is ledgered or kept. A
    ``reference`` given now (the erasure's) is checked before anything is compared."""
    require(principal.role, "subjects.manage", principal.name)
    if reference is not None:
        check_reference(reference)
    hits = find_faces(app, subject_embedding(app, photo, face))
    with app.db.read() as s:
        prov = faces_with_provenance(s, [h.face_id for h in hits])
        out = []
        for h in hits:
            f = prov.get(h.face_id)
            src = f.image.sources[0] if f is not None and f.image.sources else None
            out.append(replace(h, source_url=src.source_url if src else None,
                               original_path=src.original_path if src else None))
    return out


def optout(app: Faceledger, principal: Principal, photo: bytes, reference: str,
           face: int | None = None) -> int:
    require(principal.role, "subjects.manage", principal.name)
    ref = check_reference(reference)
    return add_optout(app, principal, subject_embedding(app, photo, face), ref)


def erase(app: Faceledger, principal: Principal, face_ids: list[int], reference: str
          ) -> dict[str, Any]:
    """Delete the images holding these faces: rows, files, thumbnails, vectors. Ledgered."""
    require(principal.role, "subjects.manage", principal.name)
    reference = check_reference(reference)
    if not face_ids:
        raise ValidationError("no face was chosen: choose (tick) each face to erase; nothing "
                              "was erased")
    files: list[str] = []
    removed: dict[tuple[str, int], list[int]] = {}
    with app.db.write() as s:
        images = s.execute(select(Image).join(Face, Face.image_id == Image.id)
                           .where(Face.id.in_(face_ids)).distinct()).scalars().all()
        if not images:
            raise NotFoundError("none of the chosen faces is in the gallery (already erased?); "
                                "nothing was erased")
        shas = sorted(i.sha256 for i in images)
        n_faces = 0
        for img in images:
            files.append(img.stored_path)
            for f in img.faces:
                files.append(f.thumbnail_path)
                removed.setdefault((f.model_id, img.collection_id), []).append(f.id)
                n_faces += 1
            s.delete(img)
        for (_model, col_id) in removed:
            bump_faces_version(s, col_id)
        ledger.append(s, "subject.erased", {
            "reference": reference, "images": len(images), "faces": n_faces,
            "images_digest": hashlib.sha256("\n".join(shas).encode()).hexdigest(),
            "by": principal.name}, actor=principal.name)
    for (model_id, col_id), ids in removed.items():
        app.indexes.remove(model_id, col_id, np.asarray(ids, dtype=np.int64))
    app.indexes.flush()
    for rel in files:
        app.files.delete(rel)
    return {"images": len(images), "faces": n_faces}


def access(app: Faceledger, principal: Principal, photo: bytes,
           face: int | None = None) -> list[dict[str, Any]]:
    """Searches (within retention) whose probe was this person, or that returned them."""
    require(principal.role, "subjects.manage", principal.name)
    query = subject_embedding(app, photo, face)
    threshold = optout_threshold(app, query.model_id)
    mine = {f.face_id for f in find_faces(app, query)}
    out: list[dict[str, Any]] = []
    with app.db.read() as s:
        for row in s.execute(select(Search).where(Search.status == "done")
                             .order_by(Search.id)).scalars():
            how = []
            if row.probe_embedding is not None:
                vec = np.frombuffer(row.probe_embedding, dtype="<f4")
                if float(vec @ query.vector) >= threshold:
                    how.append("probe")
            if row.results_purged_at is None and mine:
                entry = s.get(LedgerEntry, row.ledger_seq)
                payload = ledger.entry_dict(entry)["payload"] if entry else None
                got = {c["face_id"] for c in (payload or {}).get("candidates", [])}
                if got & mine:
                    how.append("result")
            if how:
                outcome = latest_outcome(s, row.id)
                out.append({"search_id": row.id, "date": row.started_at.isoformat(),
                            "purpose": row.purpose, "offence": row.offence,
                            "unit": row.user.unit or "(no unit recorded)", "matched_as": how,
                            "outcome": outcome.result if outcome else None})
    with app.db.write() as s:
        ledger.append(s, "subject.access", {"searches_found": len(out), "by": principal.name},
                      actor=principal.name)
    return out
