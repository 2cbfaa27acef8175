"""Build a faceledger gallery from precomputed LFW embeddings (made by faceledger's own pipeline,
see bench/embed_lfw.py), so search benchmarks need not re-run a 13k-image ingest."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from faceledger.core import Faceledger
from faceledger.db.schema import Face, Image, ImageSource
from faceledger.gallery.collections import add_collection
from faceledger.settings import Settings


def load_npz(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    data = np.load(path, allow_pickle=False)
    return ([str(p) for p in data["paths"]], [str(i) for i in data["identity"]],
            data["vectors"].astype(np.float32))


def build_gallery(home: Path, npz: Path, collection: str = "lfw") -> tuple[Faceledger, str]:
    """A fresh data home whose collection holds one face per LFW image. Returns (app, admin token)."""
    home.mkdir(parents=True, exist_ok=True)
    # A benchmark policy: the packaged default's daily quota would refuse a load test.
    (home / "policy.toml").write_text('purposes = ["criminal investigation"]\n'
                                      'offences = ["other"]\n')
    app = Faceledger(Settings(home=home, workers=1))
    _, token = app.initialise("bench", "bench-password-1")
    admin = app.authenticate(token)
    paths, _ids, vecs = load_npz(npz)
    now = datetime.now(UTC)
    with app.db.write() as s:
        col = add_collection(s, collection, "benchmark (LFW research data)", "", actor=admin)
        for i, (p, v) in enumerate(zip(paths, vecs, strict=True)):
            sha = hashlib.sha256(p.encode()).hexdigest()
            img = Image(collection_id=col.id, sha256=sha, stored_path=f"lfw/{p}", width=250,
                        height=250, bytes=0, format="JPEG", ingested_at=now)
            s.add(img)
            s.flush()
            s.add(ImageSource(image_id=img.id, source_key=sha, original_path=p,
                              source_url=f"https://lfw.example/{p}", added_at=now))
            s.add(Face(image_id=img.id, collection_id=col.id, face_index=0, box=[0, 0, 1, 1],
                       landmarks=[], quality={}, model_id=app.model_id,
                       embedding=v.astype("<f4").tobytes(), thumbnail_path=f"thumbs/{i}.jpg"))
        col.faces_version = 1
        col_id = col.id
    app.indexes.rebuild(app.model_id, col_id)
    return app, token
