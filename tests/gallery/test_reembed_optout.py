"""Re-embedding keeps subject rights and concurrent ingest safe (issue 14 part 4, follow-up):
opt-outs made under the old model still block under the new one (new-model templates found
during the job; the switch refused while an opt-out has none, until `subject optout
--reference R` is re-run), an opt-out made during the job covers the new model, the switch
waits for running ingests and ingest refuses while switching, and face counts are the active
model's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from faceledger.cli.main import app as cli_app
from faceledger.db.schema import BlockedSubject, Face, Image, ReembedJob
from faceledger.errors import ConflictError
from faceledger.gallery.collections import collection_list
from faceledger.gallery.ingest import Ingest
from faceledger.gallery.optout import withheld_faces
from faceledger.gallery.reembed import reembed_status, run_reembed, start_reembed
from faceledger.gallery.repository import job_face_tally
from faceledger.governance import ledger
from faceledger.oversight import subjects
from tests.conftest import World
from tests.gallery.test_reembed import FAKE, Stop, _photos, _search
from tests.photos import astronaut_face, encode, grace_hopper


@pytest.fixture
def gallery(world: World, tmp_path: Path) -> World:
    world.app.settings.commit_every = 1
    Ingest(world.app, world.admin).run([_photos(tmp_path)], "gallery")
    return world


def _templates(world: World) -> list[tuple[int, str, str]]:
    with world.app.db.read() as s:
        return sorted((int(r.ledger_seq), r.reference, r.model_id)
                      for r in s.execute(select(BlockedSubject)).scalars())


def _entries(world: World, kind: str) -> list[dict[str, Any]]:
    with world.app.db.read() as s:
        return [ledger.entry_dict(e)["payload"] for e in ledger.read(s) if e.kind == kind]


def _ingest_one(world: World, tmp_path: Path, name: str, data: bytes) -> Any:
    d = tmp_path / name
    d.mkdir()
    (d / f"{name}.jpg").write_bytes(data)
    return Ingest(world.app, world.admin).run([d], "gallery")


def _run(world: World) -> dict[str, Any]:
    return run_reembed(world.app, world.admin, start_reembed(world.app, world.admin, FAKE)["id"])


def test_old_model_optout_still_blocks_ingest_and_search_after_the_switch(
        gallery: World, tmp_path: Path) -> None:
    app = gallery.app
    subjects.optout(app, gallery.admin, encode(grace_hopper()), "REQ-7")
    ((seq, _, _),) = _templates(gallery)
    done = _run(gallery)
    assert done["switched"] and app.model_id == FAKE and done["withheld"] == 2
    # Her two gallery faces (grace.jpg, pair.jpg) became FAKE templates of the same opt-out.
    assert [t for t in _templates(gallery) if t[2] == FAKE] == [(seq, "REQ-7", FAKE)] * 2
    added = [t for b in _entries(gallery, "reembed.batch") for t in b["optout_templates"]]
    assert [(t["optout"], len(t["templates_sha256"])) for t in added] == [(seq, 1), (seq, 1)]
    # A new photo of her, ingested under the new model, is skipped.
    later = _ingest_one(gallery, tmp_path, "later", encode(grace_hopper(), quality=70))
    assert (later.added, later.blocked_faces, later.faces) == (1, 1, 0)
    res = _search(gallery)  # and nothing of her comes back
    assert res.model_id == FAKE and all(c.similarity < 0.9 for c in res.candidates)


def test_an_optout_with_no_gallery_face_blocks_the_switch_until_rerun(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = world.app
    _ingest_one(world, tmp_path, "astro", encode(astronaut_face()))
    subjects.optout(app, world.admin, encode(grace_hopper()), "REQ-9")
    old = app.model_id
    blocked = _run(world)
    assert (blocked["status"], blocked["switched"], app.model_id) == ("blocked", False, old)
    why = reembed_status(app, world.admin, blocked["id"])["blocked"]
    assert why["reason"] == "optouts_without_template" and why["references"] == ["REQ-9"]
    assert "--reference R" in why["message"] and f"reembed --model {FAKE}" in why["message"]
    (entry,) = _entries(world, "reembed.blocked")
    assert entry["optouts"] == 1 and entry["references"] == ["REQ-9"]
    # The documented remedy: the same command again with the reference.
    photo = tmp_path / "grace.jpg"
    photo.write_bytes(encode(grace_hopper()))
    monkeypatch.setenv("FACELEDGER_HOME", str(app.settings.home))
    monkeypatch.setenv("FACELEDGER_TOKEN", world.admin_token)
    out = CliRunner().invoke(cli_app, ["subject", "optout", str(photo), "--reference", "REQ-9",
                                       "--yes", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout[out.stdout.index("{"):])["optout_id"] >= 1
    seqs = {t[0] for t in _templates(world)}
    assert len(seqs) == 1 and {t[2] for t in _templates(world)} == {old, FAKE}
    assert _entries(world, "subject.optout_extended")[0]["reference"] == "REQ-9"
    assert reembed_status(app, world.admin, blocked["id"])["blocked"] is None
    done = _run(world)
    assert done["switched"] and app.model_id == FAKE
    later = _ingest_one(world, tmp_path, "later", encode(grace_hopper(), quality=70))
    assert (later.blocked_faces, later.faces) == (1, 0)


def test_an_optout_made_during_the_job_covers_the_new_model(gallery: World) -> None:
    """Grace's image is embedded with FAKE before she opts out: her FAKE face stays in the
    new index, so after the switch the search must withhold it by her FAKE template."""
    app, old = gallery.app, gallery.app.model_id

    def stop_after_two(progress: dict[str, Any]) -> None:
        if progress["processed"] >= 2:
            raise Stop

    first = start_reembed(app, gallery.admin, FAKE)
    with pytest.raises(Stop):
        run_reembed(app, gallery.admin, first["id"], progress=stop_after_two)
    with app.db.read() as s:
        grace_face = s.execute(select(Face.id).join(Image).where(
            Face.model_id == FAKE, Image.id == 2)).scalar_one()
    # Counts mean faces in the gallery: the active model's, not FAKE's beside them.
    (col,) = collection_list(app, gallery.admin)
    with app.db.read() as s:
        n_old = len(s.execute(select(Face.id).where(Face.model_id == old)).all())
        n_all = len(s.execute(select(Face.id)).all())
        tally = job_face_tally(s, 1, old)
    assert col["faces"] == n_old == 4 < n_all and tally["images_several_faces"] == 1
    assert tally["images_one_face"] == 2
    subjects.optout(app, gallery.admin, encode(grace_hopper()), "REQ-8")
    assert {t[2] for t in _templates(gallery)} == {old, FAKE}
    assert _entries(gallery, "subject.optout")[0]["other_models"].keys() == {FAKE}
    done = _run(gallery)
    assert done["switched"] and app.model_id == FAKE
    assert withheld_faces(app, FAKE, [grace_face]) == {grace_face}
    res = _search(gallery)
    assert grace_face not in {c.face_id for c in res.candidates}


def test_the_switch_waits_for_ingest_and_ingest_waits_for_the_switch(
        gallery: World, tmp_path: Path) -> None:
    app, old = gallery.app, gallery.app.model_id
    more = tmp_path / "more"
    more.mkdir()
    (more / "a.jpg").write_bytes(encode(astronaut_face().rotate(3)))
    pending = Ingest(app, gallery.admin).prepare([more], "gallery")  # running, nothing added yet
    blocked = _run(gallery)
    assert (blocked["status"], app.model_id) == ("blocked", old)
    why = reembed_status(app, gallery.admin, blocked["id"])["blocked"]
    assert why["reason"] == "ingest_running" and why["ingest_jobs"] == [pending.summary.job_id]
    Ingest(app, gallery.admin).execute(pending)
    done = _run(gallery)
    assert done["switched"] and done["processed"] == 1 and app.model_id == FAKE
    with app.db.write() as s:  # a job in its last step (indexes, then the switch)
        s.get_one(ReembedJob, done["id"]).status = "switching"
    with pytest.raises(ConflictError, match="switching to face model"):
        Ingest(app, gallery.admin).prepare([more], "gallery")
