"""Opt-out: a person's face becomes a protected template on a blocklist. Matching faces are
withheld from every result and skipped at every future ingest, at a threshold chosen for
recall (the calibration's threshold at a false non-match rate of 1% on genuine pairs)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import BlockedSubject, Face
from faceledger.errors import NotFoundError
from faceledger.faces.models.base import model_dim
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


@dataclass(frozen=True)
class Templates:
    """A model's opt-out templates (one row each) and the opt-out each belongs to: the
    ``ledger_seq`` of its ``subject.optout`` entry, and its reference."""

    vectors: np.ndarray
    optouts: list[int]
    references: list[str]


def template_set(app: Faceledger, model_id: str) -> Templates:
    with app.db.read() as s:
        rows = s.execute(select(BlockedSubject.template, BlockedSubject.ledger_seq,
                                BlockedSubject.reference)
                         .where(BlockedSubject.model_id == model_id)
                         .order_by(BlockedSubject.id)).all()
    if not rows:
        return Templates(np.zeros((0, model_dim(model_id)), dtype=np.float32), [], [])
    key = template_key(app.settings.home)
    vecs = np.stack([np.frombuffer(unseal(key, r[0]), dtype="<f4") for r in rows])
    return Templates(vecs.astype(np.float32), [int(r[1]) for r in rows],
                     [str(r[2]) for r in rows])


def templates(app: Faceledger, model_id: str) -> np.ndarray:
    return template_set(app, model_id).vectors


def lacking_model(session: Session, model_id: str) -> list[tuple[int, str]]:
    """Repository: the opt-outs (``ledger_seq``, reference) with no template for ``model_id``,
    oldest first: under that model they would block nobody."""
    have = {int(q) for q in session.execute(select(BlockedSubject.ledger_seq).where(
        BlockedSubject.model_id == model_id)).scalars()}
    out: dict[int, str] = {}
    for seq, ref in session.execute(select(BlockedSubject.ledger_seq, BlockedSubject.reference)
                                    .order_by(BlockedSubject.ledger_seq)).all():
        if int(seq) not in have:
            out.setdefault(int(seq), str(ref))
    return list(out.items())


def add_templates(session: Session, key: bytes, optout_seq: int, reference: str,
                  embeddings: Sequence[Embedding]) -> list[str]:
    """Repository: more templates (sealed) for an existing opt-out; their sha256s, for the
    caller's ledger entry."""
    blobs = [seal(key, e.to_bytes()) for e in embeddings]
    session.add_all(BlockedSubject(model_id=e.model_id, template=b, reference=reference,
                                   created_at=datetime.now(UTC), ledger_seq=optout_seq)
                    for e, b in zip(embeddings, blobs, strict=True))
    session.flush()
    return [hashlib.sha256(b).hexdigest() for b in blobs]


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
               reference: str, more: Mapping[str, Sequence[Embedding]] | None = None) -> int:
    """One opt-out holding a template per photo (one ledger entry); the first row's id.
    ``more``: the same photos embedded with other models (those of unfinished re-embeddings),
    kept with the same opt-out. When opt-outs with this (non-blank) reference already exist
    and lack a template for one of these models, the templates of the models they lack are
    added to them instead (``subject.optout_extended``): the remedy for an opt-out made before
    a re-embedding that found none of the person's faces."""
    by_model = {embeddings[0].model_id: list(embeddings),
                **{m: list(v) for m, v in (more or {}).items() if v}}
    key = template_key(app.settings.home)
    threshold = optout_threshold(app, embeddings[0].model_id)
    with app.db.write() as s:
        if reference:
            added = _extend(s, key, principal, reference, by_model)
            if added is not None:
                return added
        return _new_optout(s, key, principal, reference, by_model, threshold)


def _extend(s: Session, key: bytes, principal: Principal, reference: str,
            by_model: dict[str, list[Embedding]]) -> int | None:
    """Add the models' templates to the opt-outs with this reference (or ``#N``: the opt-out
    of ledger entry N, for one made without a reference) that lack them; None if none does."""
    match = BlockedSubject.reference == reference
    if reference.startswith("#") and reference[1:].isdigit():
        match = match | (BlockedSubject.ledger_seq == int(reference[1:]))
    have: dict[int, tuple[str, set[str]]] = {}
    for seq, model, ref in s.execute(select(BlockedSubject.ledger_seq, BlockedSubject.model_id,
                                            BlockedSubject.reference).where(match)).all():
        have.setdefault(int(seq), (str(ref), set()))[1].add(str(model))
    todo = {seq: (ref, [m for m in by_model if m not in models])
            for seq, (ref, models) in have.items()}
    todo = {seq: v for seq, v in todo.items() if v[1]}
    if not todo:
        return None
    for seq, (ref, models) in sorted(todo.items()):
        shas = {m: add_templates(s, key, seq, ref, by_model[m]) for m in models}
        ledger.append(s, "subject.optout_extended", {
            "optout": seq, "reference": ref, "templates_sha256": shas,
            "by": principal.name}, actor=principal.name)
    row = s.execute(select(BlockedSubject.id).where(BlockedSubject.ledger_seq == min(todo))
                    .order_by(BlockedSubject.id).limit(1)).scalar_one()
    return int(row)


def _new_optout(s: Session, key: bytes, principal: Principal, reference: str,
                by_model: dict[str, list[Embedding]], threshold: float) -> int:
    sealed = {m: [seal(key, e.to_bytes()) for e in embs] for m, embs in by_model.items()}
    shas = {m: [hashlib.sha256(b).hexdigest() for b in blobs] for m, blobs in sealed.items()}
    model_id = next(iter(by_model))
    entry = ledger.append(s, "subject.optout", {
        "model_id": model_id, "reference": reference, "template_sha256": shas[model_id][0],
        "templates": len(shas[model_id]), "templates_sha256": shas[model_id],
        "withhold_threshold": round(threshold, 6), "by": principal.name,
        **({"other_models": {m: v for m, v in shas.items() if m != model_id}}
           if len(shas) > 1 else {})}, actor=principal.name)
    rows = [BlockedSubject(model_id=m, template=b, reference=reference,
                           created_at=datetime.now(UTC), ledger_seq=entry.seq)
            for m, blobs in sealed.items() for b in blobs]
    s.add_all(rows)
    s.flush()
    return rows[0].id
