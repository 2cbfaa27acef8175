"""Re-embedding a gallery with another model (issue 14 part 4): searches keep the old model
while the job runs and use the new one after the atomic switch; resumable without duplicates;
ledgered; CLI, API, admin page and permissions. A second model is registered here: dlib's
detector and aligner with a deterministic embedder (a fixed projection of the aligned chip)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from faceledger.cli.main import app as cli_app
from faceledger.db.schema import Face, ImageEmbedding, ReembedJob
from faceledger.errors import ConflictError, PermissionDeniedError, ValidationError
from faceledger.faces.align import AlignedFace
from faceledger.faces.embed import Embedding, normalise
from faceledger.faces.models import dlib_backend
from faceledger.faces.models.base import FaceModel, ModelCapabilities, ModelOptions, register_model
from faceledger.gallery.ingest import Ingest
from faceledger.gallery.reembed import reembed_status, run_reembed, start_reembed
from faceledger.governance import ledger
from faceledger.search.service import SearchRequest, run_search
from faceledger.server import create_app
from tests.conftest import World
from tests.photos import astronaut_face, collage, encode, grace_hopper

FAKE = "test-projection-v1"


class ProjectionEmbedder:
    """A fixed random projection of the aligned chip (downsampled to 30x30): deterministic."""

    model_id = FAKE
    dim = 128

    def __init__(self) -> None:
        self.matrix = np.random.default_rng(14).standard_normal((30 * 30 * 3, 128)).astype(
            np.float32)

    def embed(self, faces: Sequence[AlignedFace]) -> list[Embedding]:
        out = []
        for f in faces:
            chip = np.asarray(f.chip, dtype=np.float32)
            step = max(1, chip.shape[0] // 30)
            small = chip[::step, ::step][:30, :30].reshape(-1) / 255.0
            out.append(Embedding(FAKE, normalise(small @ self.matrix)))
        return out


@dataclasses.dataclass
class ProjectionModel:
    capabilities: ModelCapabilities
    detector: Any
    aligner: Any
    embedder: Any


def _load(options: ModelOptions) -> FaceModel:
    base = dlib_backend.load(options)
    caps = dataclasses.replace(dlib_backend.CAPABILITIES, model_id=FAKE, source="test projection")
    return ProjectionModel(caps, base.detector, base.aligner, ProjectionEmbedder())


register_model(dataclasses.replace(dlib_backend.CAPABILITIES, model_id=FAKE, source="test"), _load)


def _photos(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (src / "grace.jpg").write_bytes(encode(grace_hopper()))
    (src / "pair.jpg").write_bytes(encode(collage()))
    return src


@pytest.fixture
def gallery(world: World, tmp_path: Path) -> World:
    world.app.settings.commit_every = 1  # one image per batch: interruptible between images
    Ingest(world.app, world.admin).run([_photos(tmp_path)], "gallery")
    return world


def _faces(world: World, model: str) -> list[tuple[int, int]]:
    with world.app.db.read() as s:
        return sorted((int(i), int(n)) for i, n in s.execute(
            select(Face.image_id, Face.face_index).where(Face.model_id == model)).all())


def _kinds(world: World) -> list[str]:
    with world.app.db.read() as s:
        return [e.kind for e in ledger.read(s) if e.kind.startswith(("reembed.", "model."))]


def _search(world: World) -> Any:
    return run_search(world.app, world.investigator, encode(grace_hopper()),
                      SearchRequest("RE-1", "criminal investigation", "robbery", "b", top_k=3))


def test_searches_keep_the_old_model_during_the_job_and_switch_after(gallery: World) -> None:
    app, old = gallery.app, gallery.app.model_id
    old_faces = _faces(gallery, old)
    seen: list[str] = []

    def during(progress: dict[str, Any]) -> None:
        res = _search(gallery)  # the job is half done: still the old model, and its faces
        seen.append(res.model_id)
        assert all(c.face_id in {f.id for f in _rows(gallery, old)} for c in res.candidates)

    job = start_reembed(app, gallery.admin, FAKE)
    assert (job["total"], job["from_model"]) == (3, old)
    done = run_reembed(app, gallery.admin, job["id"], progress=during)
    assert seen == [old, old, old] and done["switched"] is True
    assert app.model_id == FAKE and app.pipeline().model_id == FAKE
    assert _faces(gallery, old) == old_faces  # old faces kept (past searches name them)
    assert len(_faces(gallery, FAKE)) == done["faces"] >= 3
    after = _search(gallery)
    assert after.model_id == FAKE and after.candidates[0].similarity > 0.99
    assert {c.face_id for c in after.candidates} <= {f.id for f in _rows(gallery, FAKE)}
    assert _kinds(gallery) == ["reembed.started", "reembed.batch", "reembed.batch",
                               "reembed.batch", "model.switched", "reembed.finished"]
    # A fresh process reads the active model from the database, not from its settings.
    from faceledger.core import Faceledger
    other = Faceledger(app.settings.model_copy(update={"model": old}))
    try:
        assert other.model_id == FAKE and other.configured_model == old
    finally:
        other.close()


def _rows(world: World, model: str) -> list[Face]:
    with world.app.db.read() as s:
        return list(s.execute(select(Face).where(Face.model_id == model)).scalars())


class Stop(Exception):
    pass


def test_interrupted_then_resumed_adds_nothing_twice(gallery: World) -> None:
    app, old = gallery.app, gallery.app.model_id

    def stop_after_one(progress: dict[str, Any]) -> None:
        if progress["processed"] >= 1:
            raise Stop

    first = start_reembed(app, gallery.admin, FAKE)
    with pytest.raises(Stop):
        run_reembed(app, gallery.admin, first["id"], progress=stop_after_one)
    assert reembed_status(app, gallery.admin, first["id"])["status"] == "failed"
    partial = _faces(gallery, FAKE)
    assert partial and app.model_id == old  # not switched: the gallery is not done
    with app.db.read() as s:
        assert s.execute(select(func.count()).select_from(ImageEmbedding)).scalar_one() == 1
    second = start_reembed(app, gallery.admin, FAKE)
    assert second["total"] == 2  # resumes at the images not yet embedded
    done = run_reembed(app, gallery.admin, second["id"])
    faces = _faces(gallery, FAKE)
    assert len(faces) == len(set(faces)) and set(partial) <= set(faces)
    assert done["processed"] == 2 and done["switched"] and app.model_id == FAKE
    assert "reembed.failed" in _kinds(gallery)


def test_one_collection_switches_only_when_the_whole_gallery_is_done(gallery: World,
                                                                    tmp_path: Path) -> None:
    from faceledger.gallery.collections import create_collection
    app, old = gallery.app, gallery.app.model_id
    create_collection(app, gallery.admin, "second", "test basis", "")
    more = tmp_path / "more"
    more.mkdir()
    (more / "a.jpg").write_bytes(encode(astronaut_face().rotate(3)))
    Ingest(app, gallery.admin).run([more], "second")
    part = run_reembed(app, gallery.admin, start_reembed(app, gallery.admin, FAKE, "second")["id"])
    assert (part["switched"], part["images_left_elsewhere"], app.model_id) == (False, 3, old)
    rest = run_reembed(app, gallery.admin, start_reembed(app, gallery.admin, FAKE)["id"])
    assert rest["switched"] and rest["processed"] == 3 and app.model_id == FAKE


def test_input_rules_and_permissions(gallery: World) -> None:
    app = gallery.app
    with pytest.raises(PermissionDeniedError):
        start_reembed(app, gallery.investigator, FAKE)
    with pytest.raises(PermissionDeniedError):
        reembed_status(app, gallery.auditor, 1)
    with pytest.raises(ValidationError, match="unknown face model"):
        start_reembed(app, gallery.admin, "no-such-model")
    with pytest.raises(ValidationError, match="already the model in use"):
        start_reembed(app, gallery.admin, app.model_id)
    job = start_reembed(app, gallery.admin, FAKE)
    with pytest.raises(ConflictError, match="still running"):
        start_reembed(app, gallery.admin, FAKE)  # one at a time
    with app.db.write() as s:  # the job's process was killed (-9): its pid is gone
        s.get_one(ReembedJob, job["id"]).pid = 2 ** 22 + 7
    again = start_reembed(app, gallery.admin, FAKE)
    assert reembed_status(app, gallery.admin, job["id"])["status"] == "interrupted"
    run_reembed(app, gallery.admin, again["id"])
    assert "reembed.interrupted" in _kinds(gallery)


def test_cli_reembeds_and_reports(gallery: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELEDGER_HOME", str(gallery.app.settings.home))
    monkeypatch.setenv("FACELEDGER_TOKEN", gallery.investigator_token)
    refused = CliRunner().invoke(cli_app, ["reembed", "--model", FAKE])
    assert refused.exit_code != 0 and gallery.app.model_id != FAKE
    monkeypatch.setenv("FACELEDGER_TOKEN", gallery.admin_token)
    res = CliRunner().invoke(cli_app, ["reembed", "--model", FAKE, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["switched"] is True and out["processed"] == 3
    gallery.app.model_switched(FAKE)  # (the CLI ran with its own context)
    with gallery.app.db.read() as s:
        assert [e.kind for e in ledger.read(s)][-1] == "reembed.finished"


def test_api_and_admin_page(gallery: World) -> None:
    settings = gallery.app.settings.model_copy()
    with TestClient(create_app(settings, load_models=False)) as client:
        admin = {"authorization": f"Bearer {gallery.admin_token}"}
        ivy = {"authorization": f"Bearer {gallery.investigator_token}"}
        assert client.post("/api/v1/reembed", json={"model": FAKE}, headers=ivy).status_code == 403
        bad = client.post("/api/v1/reembed", json={"model": "nope"}, headers=admin)
        assert bad.status_code == 422
        started = client.post("/api/v1/reembed", json={"model": FAKE}, headers=admin)
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        client.app.state.jobs.wait_reembed(job_id, timeout=300)  # type: ignore[attr-defined]
        job = client.get(started.json()["status_url"], headers=admin).json()
        assert (job["status"], job["switched"], job["processed"]) == ("done", True, 3)
        overview = client.get("/api/v1/reembed", headers=admin).json()
        assert overview["active_model"] == FAKE and overview["jobs"][0]["id"] == job_id
        page = client.get("/admin", headers=admin)
        assert page.status_code == 200 and 'data-testid="active-model">' + FAKE in page.text
        assert "/admin/reembed" in page.text


def test_people_who_opted_out_under_the_old_model_are_not_re_embedded(gallery: World) -> None:
    """Their faces were withheld under the old model's templates; the new model has none, so
    the job checks each new face against the old templates through the old face."""
    from faceledger.gallery.optout import add_optout
    app, old = gallery.app, gallery.app.model_id
    probe = app.pipeline().process(encode(grace_hopper())).faces[0].embedding
    add_optout(app, gallery.admin, [probe], "subject request 7")
    done = run_reembed(app, gallery.admin, start_reembed(app, gallery.admin, FAKE)["id"])
    assert done["withheld"] == 2  # grace.jpg and her half of pair.jpg
    assert len(_faces(gallery, FAKE)) == done["faces"] == len(_faces(gallery, old)) - 2
    grace = _search(gallery)  # the new model: Grace Hopper's gallery face is not there
    assert all(c.similarity < 0.99 for c in grace.candidates)
