"""Opt-out, erasure and subject access, with the real models."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from faceledger.db.schema import BlockedSubject, Face, Image, ImageSource, User
from faceledger.errors import (
    NoFaceError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger
from faceledger.oversight import subjects
from faceledger.search.outcomes import record_outcome
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.photos import astronaut_face, collage, encode, grace_hopper, noise_image, variants

REQ = SearchRequest("S-1", "criminal investigation", "robbery", "basis")


@pytest.fixture
def gallery(world: World, tmp_path: Path) -> World:
    d = tmp_path / "g"
    d.mkdir()
    (d / "astro.jpg").write_bytes(encode(astronaut_face()))
    (d / "astro2.jpg").write_bytes(variants(astronaut_face())["brighter"])
    (d / "grace.jpg").write_bytes(encode(grace_hopper()))
    Ingest(world.app, world.admin).run([d], "gallery")
    return world


def result_paths(world: World, probe: bytes) -> list[str]:
    res = run_search(world.app, world.investigator, probe, REQ)
    return [str(c.sources[0]["original_path"]) for c in res.candidates]


def test_optout_withholds_results_and_blocks_ingest(gallery: World, tmp_path: Path) -> None:
    before = result_paths(gallery, encode(astronaut_face()))
    assert sum("astro" in p for p in before) == 2
    with pytest.raises(PermissionDeniedError):
        subjects.optout(gallery.app, gallery.investigator, encode(astronaut_face()), "x")
    subjects.optout(gallery.app, gallery.admin, variants(astronaut_face())["mirror"], "REQ-1")
    after = result_paths(gallery, encode(astronaut_face()))
    assert after and all("grace" in p for p in after)
    with gallery.app.db.read() as s:
        entry = ledger.entry_dict(ledger.read(s, kind="subject.optout")[-1])
        blob = s.execute(select(BlockedSubject.template)).scalar_one()
    assert "template_sha256" in entry["payload"] and "vector" not in str(entry["payload"])
    assert len(blob) == 12 + 512 + 16  # nonce + encrypted 128 float32 + tag: not plain text
    new = tmp_path / "later"
    new.mkdir()
    (new / "astro-again.jpg").write_bytes(variants(astronaut_face())["darker"])
    (new / "grace-again.jpg").write_bytes(variants(grace_hopper())["darker"])
    summary = Ingest(gallery.app, gallery.admin).run([new], "gallery")
    assert summary.blocked_faces == 1 and summary.faces == 1


def test_erasure_leaves_no_trace(gallery: World) -> None:
    app = gallery.app
    found = subjects.erase_preview(app, gallery.admin, variants(astronaut_face())["crop"],
                                   reference="ERASE-1")
    assert len(found) == 2
    assert sorted(Path(str(f.original_path)).name for f in found) == ["astro.jpg", "astro2.jpg"]
    assert [f.similarity for f in found] == sorted((f.similarity for f in found), reverse=True)
    with app.db.read() as s:
        doomed = s.execute(select(Image.sha256, Image.stored_path)
                           .where(Image.id.in_([f.image_id for f in found]))).all()
        thumbs = [f.thumbnail_path for f in found]
    done = subjects.erase(app, gallery.admin, [f.face_id for f in found], "  ERASE-1 ")
    assert done == {"images": 2, "faces": 2}
    with app.db.read() as s:
        assert s.execute(select(func.count(Face.id))).scalar_one() == 1
        assert s.execute(select(func.count(Image.id))).scalar_one() == 1
        assert s.execute(select(func.count(ImageSource.id))).scalar_one() == 1
        assert ledger.verify(s).ok
        payload = ledger.entry_dict(ledger.read(s, kind="subject.erased")[-1])["payload"]
    assert payload["reference"] == "ERASE-1"  # stripped, as every front end stores it
    for sha, path in doomed:
        assert not (app.settings.home / path).exists()
        assert sha not in str(payload)
    for t in thumbs:
        assert not (app.settings.home / t).exists()
    assert app.indexes.get(app.model_id, 1).count() == 1
    assert set(app.indexes.get(app.model_id, 1).ids().tolist()).isdisjoint(
        {f.face_id for f in found})
    assert result_paths(gallery, encode(astronaut_face())) == [
        p for p in result_paths(gallery, encode(astronaut_face())) if "grace" in p]


def test_subject_access_finds_the_searches(gallery: World) -> None:
    with gallery.app.db.write() as s:
        s.execute(update(User).where(User.name == "ivy").values(unit="Unit 7"))
    from dataclasses import replace

    probe_search = run_search(gallery.app, gallery.investigator, encode(astronaut_face()),
                              replace(REQ, top_k=2))  # returns the two astronaut photos only
    record_outcome(gallery.app, gallery.investigator, probe_search.search_id, "lead_pursued")
    assert subjects.access(gallery.app, gallery.admin, encode(grace_hopper())) == []
    # Grace searched: the astronaut is among the investigate-mode results (a "result" match).
    other = run_search(gallery.app, gallery.investigator, encode(grace_hopper()), REQ)
    rows = subjects.access(gallery.app, gallery.admin, variants(astronaut_face())["mirror"])
    by_id = {r["search_id"]: r for r in rows}
    assert by_id[probe_search.search_id]["matched_as"] == ["probe", "result"]
    assert by_id[probe_search.search_id]["unit"] == "Unit 7"
    assert by_id[probe_search.search_id]["outcome"] == "lead_pursued"
    assert by_id[other.search_id]["matched_as"] == ["result"]


def test_erasure_refuses_an_empty_or_stale_choice(gallery: World) -> None:
    app = gallery.app

    def erased_entries() -> int:
        with app.db.read() as s:
            return len(ledger.read(s, kind="subject.erased"))

    with pytest.raises(ValidationError, match="no face was chosen"):
        subjects.erase(app, gallery.admin, [], "ERASE-0")
    with pytest.raises(NotFoundError, match="nothing was erased"):
        subjects.erase(app, gallery.admin, [987654], "ERASE-0")
    assert erased_entries() == 0  # a refused erasure writes nothing
    with app.db.read() as s:
        assert s.execute(select(func.count(Image.id))).scalar_one() == 3


def test_photo_faces_numbers_the_faces_for_the_picker(gallery: World) -> None:
    out = subjects.photo_faces(gallery.app, gallery.admin, encode(collage()))
    assert [f["face"] for f in out["faces"]] == [1, 2]
    lefts = [f["box"][0] for f in out["faces"]]
    assert lefts == sorted(lefts) and lefts[1] > out["width"] / 2  # left to right
    with pytest.raises(PermissionDeniedError):
        subjects.photo_faces(gallery.app, gallery.investigator, encode(collage()))
    with pytest.raises(NoFaceError):
        subjects.photo_faces(gallery.app, gallery.admin, noise_image())


def test_optout_preview_shows_what_it_withholds_before_it_is_recorded(gallery: World) -> None:
    """Issue 12, point 13: the subject sees the gallery faces the opt-out will withhold before
    it is confirmed; showing them is ledgered; nothing is blocked until the confirmation."""
    app = gallery.app
    with pytest.raises(PermissionDeniedError):
        subjects.optout_preview(app, gallery.investigator, encode(astronaut_face()), "R")
    pv = subjects.optout_preview(app, gallery.admin, variants(astronaut_face())["mirror"],
                                 " REQ-7 ")
    assert pv.photos == 1 and pv.threshold == pytest.approx(0.911115)
    with app.db.read() as s:
        names = {f.id: Path(s.get(Image, f.image_id).sources[0].original_path or "").name
                 for f in s.execute(select(Face)).scalars()}
        assert s.execute(select(func.count(BlockedSubject.id))).scalar_one() == 0
        shown = ledger.entry_dict(ledger.read(s, kind="subject.optout_preview")[-1])["payload"]
    assert sorted(names[f.face_id] for f in pv.faces) == ["astro.jpg", "astro2.jpg"]
    assert shown == {"reference": "REQ-7", "photos": 1, "faces_shown": 2,
                     "face_ids": [f.face_id for f in pv.faces], "by": "root"}
    assert "vector" not in pv.token and len(pv.token) > 500  # sealed, not readable
    with pytest.raises(ValidationError, match="not valid"):
        subjects.optout_confirm(app, gallery.admin, pv.token[:-8] + "AAAAAAAA")
    oid = subjects.optout_confirm(app, gallery.admin, pv.token)
    with app.db.read() as s:
        assert s.execute(select(BlockedSubject.reference)).scalars().all() == ["REQ-7"]
        assert s.execute(select(BlockedSubject.id)).scalar_one() == oid
    assert all("astro" not in p for p in result_paths(gallery, encode(astronaut_face())))


def test_optout_photos_are_checked(gallery: World) -> None:
    app = gallery.app
    with pytest.raises(ValidationError, match="at most 10 photos"):
        subjects.optout_preview(app, gallery.admin, [encode(astronaut_face())] * 11, "R")
    with pytest.raises(ValidationError, match="one face number per photo"):
        subjects.optout(app, gallery.admin, [encode(astronaut_face())] * 2, "R", [1])
    with pytest.raises(NoFaceError, match="photo 2") as err:
        subjects.optout(app, gallery.admin, [encode(astronaut_face()), noise_image()], "R")
    assert err.value.details["photo_number"] == 2
    pv = subjects.optout_preview(app, gallery.admin,
                                 [encode(astronaut_face()), encode(grace_hopper())], "R-2")
    assert pv.photos == 2 and len(pv.faces) == 3  # the union: both people's faces
    with app.db.read() as s:
        assert s.execute(select(func.count(BlockedSubject.id))).scalar_one() == 0
