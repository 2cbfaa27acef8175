"""Subject rights: opt out, erase, and "who searched for my face?"."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import Face, Image, LedgerEntry, Search
from faceledger.errors import FaceChoiceRequired, NoFaceError, NotFoundError, ValidationError
from faceledger.faces.detect import Detection
from faceledger.faces.embed import Embedding
from faceledger.faces.probefaces import choose_face, faces_json
from faceledger.gallery.optout import add_optout, optout_threshold
from faceledger.gallery.reembed_guard import model_pipeline
from faceledger.gallery.reembed_store import pending_models
from faceledger.gallery.repository import bump_faces_version, face_sources
from faceledger.governance import ledger, proofs
from faceledger.governance.keys import seal, template_key, unseal
from faceledger.oversight.service import published_key
from faceledger.roles import require
from faceledger.search.match import resolve_collections
from faceledger.search.outcomes import latest_outcome

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

REFERENCE_MAX = 200
OPTOUT_PHOTOS_MAX = 10
TOKEN_SECONDS = 3600  # an opt-out preview can be confirmed for an hour


@dataclass(frozen=True)
class FoundFace:
    face_id: int
    image_id: int
    collection: str
    similarity: float
    thumbnail_path: str
    source_url: str | None = None  # the image's first source (erasure preview only)
    original_path: str | None = None


@dataclass(frozen=True)
class OptoutPreview:
    photos: int
    threshold: float  # the withholding threshold in force
    faces: list[FoundFace]  # the gallery faces it will withhold, most similar first
    token: str  # sealed templates + reference, for optout_confirm


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


def subject_embedding(app: Faceledger, photo: bytes, face: int | None,
                      label: str = "photo") -> Embedding:
    """The embedding of the subject's face number ``face`` (1, 2, … left to right; None: the
    only face). Only that face is aligned and embedded."""
    return _subject_face(app, photo, face, label)[1]


def _subject_face(app: Faceledger, photo: bytes, face: int | None, label: str
                  ) -> tuple[Detection, Embedding]:
    check_face_number(face)
    pipe = app.pipeline()
    image = pipe.decode(photo)
    detections = pipe.detect(image)
    if not detections:
        raise NoFaceError(f"no face found in the subject's {label}")
    detections, idx = choose_face(detections, face, label)
    emb = pipe.embed_detections(image, [detections[idx]], thumbnails=False).faces[0].embedding
    return detections[idx], emb


def _other_models(app: Faceledger, photos: Sequence[bytes], chosen: Sequence[Detection]
                  ) -> dict[str, list[Embedding]]:
    """The same faces (the active model's boxes) embedded with each model a re-embedding has
    started on but not switched to, so the opt-out blocks under it too once it is active."""
    active = app.model_id
    with app.db.read() as s:
        models = pending_models(s, active)
    out: dict[str, list[Embedding]] = {}
    for model in models:
        pipe = model_pipeline(app, model)
        out[model] = [pipe.embed_detections(pipe.decode(data), [det], thumbnails=False)
                      .faces[0].embedding for data, det in zip(photos, chosen, strict=True)]
    return out


def find_faces(app: Faceledger, query: Embedding | Sequence[Embedding], k: int = 500
               ) -> list[FoundFace]:
    """Every gallery face at or above the opt-out threshold for any of the queries (one per
    photo of the person), most similar first, with its best similarity."""
    queries = [query] if isinstance(query, Embedding) else list(query)
    model_id = queries[0].model_id
    threshold = optout_threshold(app, model_id)
    best: dict[int, tuple[float, str]] = {}
    for col_id, name, count in resolve_collections(app, model_id, None):
        for q in queries if count else []:
            scores, ids = app.indexes.search(model_id, col_id, q.vector, min(k, count))
            for sc, i in zip(scores, ids, strict=True):
                if i >= 0 and sc >= threshold and float(sc) > best.get(int(i), (-2.0, ""))[0]:
                    best[int(i)] = (float(sc), name)
    with app.db.read() as s:
        faces = {f.id: f for f in s.execute(
            select(Face).where(Face.id.in_(list(best)))).scalars()}
    hits = sorted(((sc, fid, name) for fid, (sc, name) in best.items()), reverse=True)
    return [FoundFace(fid, faces[fid].image_id, name, round(sc, 6), faces[fid].thumbnail_path)
            for sc, fid, name in hits if fid in faces]


def erase_preview(app: Faceledger, principal: Principal, photo: bytes,
                  face: int | None = None, *, reference: str | None = None) -> list[FoundFace]:
    """The faces an erasure would remove (most similar first), each with its image's first
    source, for the operator to confirm. Nothing is erased or kept; showing the faces (the
    erasure task's look at them) is ledgered, with the faces shown. A ``reference`` given now
    (the erasure's) is checked before anything is compared."""
    require(principal.role, "subjects.manage", principal.name)
    ref = check_reference(reference) if reference is not None else None
    hits = find_faces(app, subject_embedding(app, photo, face))
    with app.db.write() as s:
        ledger.append(s, "subject.erase_preview", {
            "reference": ref, "faces_shown": len(hits), "face_ids": [h.face_id for h in hits],
            "by": principal.name}, actor=principal.name)
        prov = face_sources(s, [h.face_id for h in hits])
        out = []
        for h in hits:
            first = prov[h.face_id].first if h.face_id in prov else {}
            out.append(replace(h, source_url=first.get("source_url"),
                               original_path=first.get("original_path")))
    return out


def subject_embeddings(app: Faceledger, photos: bytes | Sequence[bytes],
                       faces: int | Sequence[int | None] | None = None) -> list[Embedding]:
    """One embedding per photo of the person (1 to OPTOUT_PHOTOS_MAX photos); ``faces``: the
    face number in each photo (one number or None for a single photo)."""
    return _optout_embeddings(app, photos, faces)[0]


def _optout_embeddings(app: Faceledger, photos: bytes | Sequence[bytes],
                       faces: int | Sequence[int | None] | None = None
                       ) -> tuple[list[Embedding], dict[str, list[Embedding]]]:
    """The active model's embeddings (``subject_embeddings``) and the other models'."""
    items = [photos] if isinstance(photos, bytes) else list(photos)
    if not items:
        raise ValidationError("choose at least one photo of the person", field="photo")
    if len(items) > OPTOUT_PHOTOS_MAX:
        raise ValidationError(f"at most {OPTOUT_PHOTOS_MAX} photos per opt-out", field="photo")
    picks: list[int | None] = ([faces] * len(items) if faces is None or isinstance(faces, int)
                               else list(faces))
    if len(picks) != len(items) or (isinstance(faces, int) and len(items) > 1):
        raise ValidationError(f"give one face number per photo ({len(items)} photos)",
                              field="face")
    out, chosen = [], []
    for n, (data, pick) in enumerate(zip(items, picks, strict=True), 1):
        try:
            det, emb = _subject_face(app, data, pick,
                                     "photo" if len(items) == 1 else f"photo {n}")
        except (FaceChoiceRequired, NoFaceError) as exc:
            exc.details["photo_number"] = n
            raise
        out.append(emb)
        chosen.append(det)
    return out, _other_models(app, items, chosen)


def optout_preview(app: Faceledger, principal: Principal, photos: bytes | Sequence[bytes],
                   reference: str, faces: int | Sequence[int | None] | None = None
                   ) -> OptoutPreview:
    """The gallery faces an opt-out from these photos would withhold, before it is confirmed.
    Showing them is ledgered (which faces, for which request); ``token`` carries the sealed
    templates to the confirmation (web), so the photos need not be sent twice."""
    require(principal.role, "subjects.manage", principal.name)
    ref = check_reference(reference)
    embs, more = _optout_embeddings(app, photos, faces)
    found = find_faces(app, embs)
    with app.db.write() as s:
        ledger.append(s, "subject.optout_preview", {
            "reference": ref, "photos": len(embs), "faces_shown": len(found),
            "face_ids": [f.face_id for f in found], "by": principal.name}, actor=principal.name)
    body = json.dumps({"by": principal.name, "reference": ref, "model_id": embs[0].model_id,
                       "expires": time.time() + TOKEN_SECONDS,
                       "templates": [base64.b64encode(e.to_bytes()).decode() for e in embs],
                       "more": {m: [base64.b64encode(e.to_bytes()).decode() for e in v]
                                for m, v in more.items()}})
    token = base64.urlsafe_b64encode(seal(template_key(app.settings.home), body.encode()))
    return OptoutPreview(len(embs), optout_threshold(app, embs[0].model_id), found,
                         token.decode())


def optout(app: Faceledger, principal: Principal, photo: bytes | Sequence[bytes],
           reference: str, face: int | Sequence[int | None] | None = None) -> int:
    """Opt a person out from one or more photos (one template each, for the active model and
    for every model a re-embedding has started on); one ledger entry. With the reference of
    an opt-out lacking one of these models, adds that model's templates to it instead
    (the remedy a re-embedding's blocked switch names)."""
    require(principal.role, "subjects.manage", principal.name)
    ref = check_reference(reference)
    embs, more = _optout_embeddings(app, photo, face)
    return add_optout(app, principal, embs, ref, more)


def optout_confirm(app: Faceledger, principal: Principal, token: str) -> int:
    """Confirm a previewed opt-out (its sealed templates and reference); the same principal,
    within TOKEN_SECONDS of the preview."""
    require(principal.role, "subjects.manage", principal.name)
    try:
        body = json.loads(unseal(template_key(app.settings.home),
                                 base64.urlsafe_b64decode(token.encode())))
    except (ValueError, InvalidTag):
        raise ValidationError("the opt-out preview is not valid: start again from the photos"
                              ) from None
    if body["by"] != principal.name or body["expires"] < time.time():
        raise ValidationError("the opt-out preview has expired or is someone else's: start "
                              "again from the photos")
    embs = [Embedding.from_bytes(body["model_id"], base64.b64decode(t))
            for t in body["templates"]]
    more = {m: [Embedding.from_bytes(m, base64.b64decode(t)) for t in ts]
            for m, ts in body.get("more", {}).items()}
    return add_optout(app, principal, embs, body["reference"], more)


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


# The answer's fields that a search's ledger entry holds (payload names): each proof discloses
# these and nothing else; the user, case, probe and candidates stay as digests.
DISCLOSED = ("search_id", "purpose", "offence", "started_at")
CHECK_HELP = ("each entry of `proofs` is a receipt: save it as its own JSON file and run "
              "`faceledger ledger check-receipt FILE --key VKEY` with the log's key as its operator "
              "published it (e.g. `jq '.proofs[0]' answer.json > p0.json`); it checks offline "
              "that the search's ledger entry is in the log the signed checkpoint describes")


def access(app: Faceledger, principal: Principal, photo: bytes,
           face: int | None = None) -> list[dict[str, Any]]:
    """Searches (within retention) whose probe was this person, or that returned them. Each
    carries its ledger entry (``ledger_seq``), a ``proof`` (``proofs.receipt``: inclusion in
    the Merkle log, the signed checkpoint when one covers it, and the shown fields disclosed
    from the entry's payload) and the log's key (``log_key``), so the person or their lawyer
    can check it against a published checkpoint without trusting the operator."""
    require(principal.role, "subjects.manage", principal.name)
    query = subject_embedding(app, photo, face)
    threshold = optout_threshold(app, query.model_id)
    mine = {f.face_id for f in find_faces(app, query)}
    key = published_key(app)
    log_key = None if key["vkey"] is None else {k: key[k] for k in ("origin", "vkey", "key_id")}
    out: list[dict[str, Any]] = []
    with app.db.read() as s:
        for row in s.execute(select(Search).where(Search.status == "done")
                             .order_by(Search.id)).scalars():
            entry = s.get(LedgerEntry, row.ledger_seq) if row.ledger_seq else None
            how = _matched_as(row, entry, query.vector, threshold, mine)
            if how:
                outcome = latest_outcome(s, row.id)
                out.append({"search_id": row.id, "date": row.started_at.isoformat(),
                            "purpose": row.purpose, "offence": row.offence,
                            "unit": row.user.unit or "(no unit recorded)", "matched_as": how,
                            "outcome": outcome.result if outcome else None,
                            "ledger_seq": row.ledger_seq, **_proof(app, s, entry),
                            "log_key": log_key})
    with app.db.write() as s:
        ledger.append(s, "subject.access", {"searches_found": len(out), "by": principal.name},
                      actor=principal.name)
    return out


def _matched_as(row: Search, entry: LedgerEntry | None, query: np.ndarray[Any, Any],
                threshold: float, mine: set[int]) -> list[str]:
    """How the search found the person: its probe, and/or among its (unpurged) results."""
    how = []
    if row.probe_embedding is not None:
        vec = np.frombuffer(row.probe_embedding, dtype="<f4")
        if float(vec @ query) >= threshold:
            how.append("probe")
    if row.results_purged_at is None and mine:
        payload = ledger.entry_dict(entry)["payload"] if entry else None
        got = {c["face_id"] for c in (payload or {}).get("candidates", [])}
        if got & mine:
            how.append("result")
    return how


def _proof(app: Faceledger, s: Session, entry: LedgerEntry | None) -> dict[str, Any]:
    """{"proof": the entry's receipt, disclosing DISCLOSED as the entry holds them (its
    values are what the payload digest covers), "proof_problem": None} or, with no entry,
    {"proof": None, "proof_problem": why}."""
    if entry is None:
        return {"proof": None, "proof_problem": "this search has no ledger entry, so there is "
                "no proof of it: the record was added outside faceledger"}
    payload = ledger.entry_dict(entry)["payload"] or {}
    shown = {k: payload[k] for k in DISCLOSED if k in payload}
    return {"proof": proofs.receipt(app, s, entry.seq, disclose=shown), "proof_problem": None}


def access_bundle(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A subject-access answer as one file for the person or their lawyer: the searches, one
    proof (receipt) per search in the same order, the log key and how to check them."""
    key = next((r["log_key"] for r in rows if r.get("log_key")), None)
    return {"how_to_check": CHECK_HELP, "log_key": key,
            "searches": [{k: v for k, v in r.items() if k not in ("proof", "log_key")}
                         for r in rows],
            "proofs": [r["proof"] for r in rows]}
