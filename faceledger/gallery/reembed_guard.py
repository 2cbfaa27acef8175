"""Re-embedding and opt-outs: a new model's faces of people who opted out are not stored, and
each one found yields a template of the new model for the same opt-out (sealed like the
others), so the person stays blocked once the new model is active.

Opt-out templates exist only for the models they were made with (the photos are not kept). A
new face is checked with the new model's templates, and with the old model's through the old
face at the same place (or, where the old detector found none, the same box embedded with the
old model). The switch itself refuses while an opt-out still has no template for the new model
(``reembed_store.blockers``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from faceledger.faces.detect import Box, Detection
from faceledger.faces.pipeline import FacePipeline, FaceResult, ImageResult
from faceledger.gallery.optout import add_templates, optout_threshold, template_set
from faceledger.gallery.reembed_store import TodoImage, faces_of
from faceledger.governance.keys import template_key

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from faceledger.core import Faceledger
    from faceledger.faces.embed import Embedding

SAME_FACE_IOU = 0.3  # an old face this much overlapping a new one is the same face


def model_pipeline(app: Faceledger, model_id: str) -> FacePipeline:
    """The active model's pipeline, or a new one for another model."""
    if app.model_id == model_id:
        return app.pipeline()
    return FacePipeline.from_settings(app.settings.model_copy(update={"model": model_id}))


@dataclass
class FoundTemplate:
    """A new-model face matching an opt-out's old-model template: its new template."""

    optout: int  # the opt-out's ledger_seq
    reference: str
    embedding: Embedding


@dataclass
class OptOutGuard:
    app: Faceledger
    model: str
    from_model: str
    found: list[FoundTemplate] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.new_t = template_set(self.app, self.model).vectors
        self.new_at = optout_threshold(self.app, self.model) if len(self.new_t) else 1.0
        self.old = template_set(self.app, self.from_model)
        self.old_at = optout_threshold(self.app, self.from_model) if len(self.old.vectors) else 1.0
        self._old_pipe: FacePipeline | None = None

    def keep(self, img: TodoImage, data: bytes, out: ImageResult) -> list[FaceResult]:
        """The image's new faces that belong to nobody who opted out; the others' new
        templates are kept in ``found`` for ``save``."""
        faces = list(out.faces)
        if not faces or not (len(self.new_t) or len(self.old.vectors)):
            return faces
        if len(self.new_t):
            vecs = np.stack([f.embedding.vector for f in faces])
            faces = [f for f, v in zip(faces, vecs @ self.new_t.T, strict=True)
                     if v.max() < self.new_at]
        if not len(self.old.vectors) or not faces:
            return faces
        with self.app.db.read() as s:
            old = faces_of(s, [img.image_id], self.from_model).get(img.image_id, [])
        kept = []
        for f in faces:
            hit = self._old_match(data, f.box, old)
            if hit is None:
                kept.append(f)
            else:
                self.found.append(FoundTemplate(self.old.optouts[hit], self.old.references[hit],
                                                f.embedding))
        return kept

    def _old_match(self, data: bytes, box: Box, old: list[tuple[list[int], np.ndarray]]
                   ) -> int | None:
        """The old template the person at ``box`` matches best (at the opt-out threshold)."""
        same = [vec for b, vec in old if _iou(box, Box(*b)) >= SAME_FACE_IOU]
        if not same:
            if self._old_pipe is None:
                self._old_pipe = model_pipeline(self.app, self.from_model)
            pipe = self._old_pipe
            res = pipe.embed_detections(pipe.decode(data), [Detection(box, 0.0)],
                                        thumbnails=False)
            same = [f.embedding.vector for f in res.faces]
        best: tuple[float, int] | None = None
        for vec in same:
            scores = vec @ self.old.vectors.T
            i = int(np.argmax(scores))
            if float(scores[i]) >= self.old_at and (best is None or scores[i] > best[0]):
                best = (float(scores[i]), i)
        return best[1] if best else None

    def save(self, session: Session) -> list[dict[str, Any]]:
        """Store the new templates found since the last call, each with its opt-out (in the
        caller's transaction); what to ledger: [{optout, reference, templates_sha256}]."""
        found, self.found = self.found, []
        if not found:
            return []
        key = template_key(self.app.settings.home)
        by_optout: dict[int, list[FoundTemplate]] = {}
        for t in found:
            by_optout.setdefault(t.optout, []).append(t)
        return [{"optout": seq, "reference": ts[0].reference,
                 "templates_sha256": add_templates(session, key, seq, ts[0].reference,
                                                   _embeddings(ts))}
                for seq, ts in sorted(by_optout.items())]


def _embeddings(found: Sequence[FoundTemplate]) -> list[Embedding]:
    return [t.embedding for t in found]


def _iou(a: Box, b: Box) -> float:
    w = max(0, min(a.right, b.right) - max(a.left, b.left))
    h = max(0, min(a.bottom, b.bottom) - max(a.top, b.top))
    inter = w * h
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0
