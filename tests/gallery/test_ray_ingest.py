"""The ray ingest engine (faceledger/gallery/ray_engine.py, issue 15 part 3): on a local Ray with
2 CPUs bound to 127.0.0.1 it stores exactly the faces, vectors, counts and ledger entries the
local engine stores for the same photos, and a re-run adds nothing. Real models, real Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from faceledger.core import Faceledger
from faceledger.db.schema import Face, LedgerEntry
from faceledger.db.schema import Image as ImageRow
from faceledger.errors import ValidationError
from faceledger.gallery.collections import add_collection
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger
from faceledger.settings import Settings
from tests.photos import astronaut_face, collage, encode, grace_hopper, noise_image, variants

ray_needed = pytest.mark.skipif(
    __import__("importlib").util.find_spec("ray") is None,
    reason="Ray is not installed: pip install 'faceledger[ray]' (make install adds it with dev)")

# what differs between two runs of the same ingest (timing, ids) and is left out of the comparison
VOLATILE = {"job_id", "seconds", "stage", "images_per_s", "faces_per_s"}


def photo_folder(folder: Path) -> int:
    """Six photos (one face, two faces, no face) and a file that is no image; returns the
    number of images."""
    folder.mkdir(parents=True)
    (folder / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (folder / "grace.jpg").write_bytes(encode(grace_hopper()))
    (folder / "pair.jpg").write_bytes(encode(collage()))
    (folder / "wall.png").write_bytes(noise_image(3))
    (folder / "mirror.jpg").write_bytes(variants(astronaut_face())["mirror"])
    (folder / "grace_dark.jpg").write_bytes(variants(grace_hopper())["darker"])
    (folder / "text.jpg").write_text("this is not a photo\n")
    return 6


def new_home(home: Path, **kw: Any) -> tuple[Faceledger, str]:
    app = Faceledger(Settings(home=home, workers=2, **kw))
    _, token = app.initialise("root")
    with app.db.write() as s:
        add_collection(s, "gallery", "test data", "photos made by tests",
                       actor=app.authenticate(token))
    return app, token


def stored(app: Faceledger) -> dict[tuple[str, int], tuple[list[int], np.ndarray]]:
    """Every stored face by (image sha256, face number): its box and its vector."""
    with app.db.read() as s:
        rows = s.execute(select(ImageRow.sha256, Face.face_index, Face.box, Face.embedding)
                         .join(Face, Face.image_id == ImageRow.id)).all()
    return {(sha, i): (box, np.frombuffer(emb, dtype="<f4")) for sha, i, box, emb in rows}


def index_holds_db_faces(app: Faceledger) -> int:
    """The vector index holds exactly the database's faces, each found by its own vector with
    score 1 (the collage repeats the astronaut's pixels: her two faces tie); returns how many."""
    with app.db.read() as s:
        faces = s.execute(select(Face.id, Face.collection_id, Face.model_id, Face.embedding)).all()
    for face_id, col_id, model_id, emb in faces:
        scores, ids = app.indexes.search(model_id, col_id, np.frombuffer(emb, dtype="<f4"), 3)
        top = {int(i) for i, sc in zip(ids, scores, strict=True) if sc > 1 - 1e-5}
        assert face_id in top, (face_id, ids, scores)
    col_ids = {f[1] for f in faces}
    assert len(col_ids) == 1
    index = app.indexes.get(app.model_id, col_ids.pop())
    assert sorted(int(i) for i in index.ids()) == sorted(f[0] for f in faces)
    return len(faces)


def ingest_entries(app: Faceledger) -> list[tuple[str, list[str]]]:
    """The ledger's ingest entries: kind and payload fields."""
    with app.db.read() as s:
        assert ledger.verify(s).ok
        rows = s.execute(select(LedgerEntry).where(LedgerEntry.kind.startswith("ingest"))
                         .order_by(LedgerEntry.seq)).scalars()
        return [(e.kind, sorted(json.loads(e.payload or "{}"))) for e in rows]


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in summary.items() if k not in VOLATILE}
    out["rejections"] = sorted((r["path"], r["code"]) for r in out["rejections"])
    out["no_face_images"] = sorted(out["no_face_images"])
    return out


def cli_ingest(home: Path, token: str, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    env.update(FACELEDGER_HOME=str(home), FACELEDGER_WORKERS="2", FACELEDGER_TOKEN=token)
    proc = subprocess.run([sys.executable, "-m", "faceledger", "ingest", *args, "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout[proc.stdout.index("{"):])
    return out


def descendants(pid: int) -> set[int]:
    """The process and everything it started (Ray's GCS, raylet and workers), from /proc."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    found, grew = {pid}, True
    while grew:
        more = {p for p, pp in parent.items() if pp in found} - found
        found |= more
        grew = bool(more)
    return found


def listening_addresses(pids: set[int]) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp* writes them) these processes listen on."""
    inodes: set[str] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    out = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                out.add(cols[1].split(":")[0])
    return out


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


@ray_needed
def test_ray_engine_stores_what_the_local_engine_stores_and_resumes(tmp_path: Path) -> None:
    """`faceledger ingest --engine ray` (a local Ray, 2 CPUs, 127.0.0.1) against the local
    process pool on the same photos: the same faces (boxes, vectors within 1e-6), the same
    index contents, summary counts and ledger entries; a re-run on Ray adds nothing."""
    photos = tmp_path / "photos"
    n_images = photo_folder(photos)
    local, local_token = new_home(tmp_path / "local")
    local_summary = Ingest(local, local.authenticate(local_token)).run([photos], "gallery")
    assert local_summary.added == n_images and local_summary.images_several_faces == 1
    assert local_summary.images_no_face == 1 and local_summary.rejected == 1

    ray_app, ray_token = new_home(tmp_path / "ray")
    ray_app.close()  # the CLI process writes this home now
    ray_summary = cli_ingest(tmp_path / "ray", ray_token, str(photos), "--collection", "gallery",
                             "--engine", "ray")
    assert comparable(ray_summary) == comparable(local_summary.as_dict())

    ray_app = Faceledger(Settings(home=tmp_path / "ray", workers=2, ingest_engine="ray"))
    want, got = stored(local), stored(ray_app)
    assert sorted(got) == sorted(want) and len(want) == local_summary.faces
    for key, (box, vec) in want.items():
        assert got[key][0] == box, key
        np.testing.assert_allclose(got[key][1], vec, rtol=0, atol=1e-6)
    assert index_holds_db_faces(ray_app) == index_holds_db_faces(local) == len(want)
    # the same kinds of entry with the same fields; how many `ingest.batch` entries there are
    # depends on when results arrive (a batch also commits when the workers go idle)
    ray_kinds, local_kinds = ingest_entries(ray_app), ingest_entries(local)
    assert {(k, tuple(f)) for k, f in ray_kinds} == {(k, tuple(f)) for k, f in local_kinds}
    assert [e for e in ray_kinds if e[0] != "ingest.batch"] == [
        e for e in local_kinds if e[0] != "ingest.batch"]

    listening: set[str] = set()  # sampled while the re-run's local Ray is up
    again = Ingest(ray_app, ray_app.authenticate(ray_token)).run(  # the engine from the settings
        [photos], "gallery", progress=lambda _: listening.update(
            listening_addresses(descendants(os.getpid()))))
    assert listening and listening <= LOOPBACK, listening  # Ray listened, on 127.0.0.1 only
    assert (again.added, again.faces, again.duplicates) == (0, 0, n_images)
    assert stored(ray_app).keys() == got.keys() and index_holds_db_faces(ray_app) == len(want)
    kinds = [k for k, _ in ingest_entries(ray_app)]
    assert kinds.count("ingest.finished") == 2
    ray_app.close()
    local.close()


def test_engine_choice_is_checked_before_a_job_opens(tmp_path: Path) -> None:
    """An unknown engine, or a Ray address with the local engine, is refused by the service
    (so every front end refuses it alike) before any job or ledger entry exists."""
    app, token = new_home(tmp_path / "home")
    admin = app.authenticate(token)
    with pytest.raises(ValidationError, match="choose the ingest engine"):
        Ingest(app, admin, engine="spark")
    with pytest.raises(ValidationError, match="--engine ray"):
        Ingest(app, admin, engine="local", address="10.0.0.5:6379")
    assert Ingest(app, admin).settings.ingest_engine == "local"
    assert ingest_entries(app) == []
    app.close()
