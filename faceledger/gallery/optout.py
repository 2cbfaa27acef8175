"""Opt-out: a person's face becomes a protected template on a blocklist. Matching faces are
withheld from every result and skipped at every future ingest, at a threshold chosen for
recall (the calibration's threshold at a false non-match rate of 1% on genuine pairs)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from faceledger.db.schema import BlockedSubject, Face
from faceledger.errors import NotFoundError
from faceledger.governance import ledger
from faceledger.governance.calibration import active_calibration, threshold_for_fnmr
from faceledger.governance.keys import seal, template_key, unseal

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger
    from faceledger.faces.embed import Embedding


FALLBACK_THRESHOLD = 0.85  # no calibration (or no FNMR data) for the model


def optout_threshold(app: Faceledger, model_id: str) -> float:
    """Chosen for recall: the active calibration's threshold at a false non-match rate of
    ``optout_fnmr`` (1%) on genuine pairs. More look-alikes are withheld (an investigator loses
    a lead), fewer of the person's own faces slip through (nobody loses their privacy)."""
    if app.settings.optout_threshold is not None:
        return app.settings.optout_threshold
    with app.db.read() as s:
        try:
            info = active_calibration(s, model_id)
        except NotFoundError:
            return FALLBACK_THRESHOLD
    found = threshold_for_fnmr(info, app.settings.optout_fnmr)
    return found if found is not None else min(FALLBACK_THRESHOLD, info.threshold)


def templates(app: Faceledger, model_id: str) -> np.ndarray:
    with app.db.read() as s:
        blobs = s.execute(select(BlockedSubject.template)
                          .where(BlockedSubject.model_id == model_id)).scalars().all()
    if not blobs:
        return np.zeros((0, 128), dtype=np.float32)
    key = template_key(app.settings.home)
    return np.stack([np.frombuffer(unseal(key, b), dtype="<f4") for b in blobs]).astype(
        np.float32)


def blocked_mask(app: Faceledger, model_id: str, vectors: np.ndarray) -> np.ndarray:
    """True for each vector that matches an opted-out person."""
    t = templates(app, model_id)
    if len(t) == 0 or len(vectors) == 0:
        return np.zeros(len(vectors), dtype=bool)
    return np.asarray((vectors @ t.T).max(axis=1) >= optout_threshold(app, model_id))


def withheld_faces(app: Faceledger, model_id: str, face_ids: Sequence[int]) -> set[int]:
    if not face_ids:
        return set()
    with app.db.read() as s:
        if s.execute(select(BlockedSubject.id).limit(1)).first() is None:
            return set()
        rows = s.execute(select(Face.id, Face.embedding).where(Face.id.in_(list(face_ids)))
                         ).all()
    if not rows:
        return set()
    vecs = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows])
    mask = blocked_mask(app, model_id, vecs)
    return {int(r[0]) for r, m in zip(rows, mask, strict=True) if m}


def add_optout(app: Faceledger, principal: Principal, embeddings: Sequence[Embedding],
               reference: str) -> int:
    """One opt-out holding a template per photo (one ledger entry); the first row's id."""
    key = template_key(app.settings.home)
    blobs = [seal(key, e.to_bytes()) for e in embeddings]
    shas = [hashlib.sha256(b).hexdigest() for b in blobs]
    model_id = embeddings[0].model_id
    threshold = optout_threshold(app, model_id)
    with app.db.write() as s:
        entry = ledger.append(s, "subject.optout", {
            "model_id": model_id, "reference": reference, "template_sha256": shas[0],
            "templates": len(shas), "templates_sha256": shas,
            "withhold_threshold": round(threshold, 6), "by": principal.name},
            actor=principal.name)
        rows = [BlockedSubject(model_id=e.model_id, template=b, reference=reference,
                               created_at=datetime.now(UTC), ledger_seq=entry.seq)
                for e, b in zip(embeddings, blobs, strict=True)]
        s.add_all(rows)
        s.flush()
        return rows[0].id
