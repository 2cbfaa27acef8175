from __future__ import annotations

from pathlib import Path

import pytest

from faceledger.errors import (
    FaceChoiceRequired,
    NoFaceError,
    PermissionDeniedError,
    PolicyRefusal,
    ValidationError,
)
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger
from faceledger.search.service import SearchRequest, detect_faces, run_search
from tests.conftest import BOTH_DATABASES, World
from tests.photos import astronaut_face, collage, encode, grace_hopper, noise_image, variants

DB_BACKENDS = BOTH_DATABASES  # every test here runs on SQLite and on PostgreSQL


def req(**kw: object) -> SearchRequest:
    base: dict[str, object] = dict(case_ref="CASE-1", purpose="criminal investigation", offence="robbery",
                                   legal_basis="test basis", mode="investigate", top_k=5)
    base.update(kw)
    return SearchRequest(**base)  # type: ignore[arg-type]


@pytest.fixture
def gallery(world: World, tmp_path: Path) -> World:
    d = tmp_path / "gallery"
    d.mkdir()
    (d / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (d / "grace.jpg").write_bytes(encode(grace_hopper()))
    (d / "m.csv").write_text("path,source_url,page_url\n"
                             "astronaut.jpg,https://example.org/astro.jpg,https://example.org/p\n")
    Ingest(world.app, world.admin).run([d], "gallery", d / "m.csv")
    return world


@pytest.mark.parametrize("variant", sorted(variants(astronaut_face())))
def test_variants_are_rank_one(gallery: World, variant: str) -> None:
    probe = variants(astronaut_face())[variant]
    res = run_search(gallery.app, gallery.investigator, probe, req())
    top = res.candidates[0]
    assert top.rank == 1 and top.source_url == "https://example.org/astro.jpg"
    assert top.page_url == "https://example.org/p" and top.collection == "gallery"
    assert top.similarity > res.candidates[1].similarity
    ident = run_search(gallery.app, gallery.investigator, probe, req(mode="identify"))
    assert [c.face_id for c in ident.candidates] == [top.face_id]


def test_other_person_does_not_pass_identify(gallery: World, tmp_path: Path) -> None:
    # Gallery without Grace Hopper: her face must not be "identified" as the astronaut.
    probe = encode(grace_hopper().resize((300, 300)))
    res = run_search(gallery.app, gallery.investigator, probe,
                     req(mode="identify", collections=["gallery"]))
    assert all("grace" in c.sources[0]["original_path"] for c in res.candidates)  # type: ignore[operator]
    assert res.threshold is not None and res.calibration is not None


def test_identify_excludes_impostor(world: World, tmp_path: Path) -> None:
    (tmp_path / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    Ingest(world.app, world.admin).run([tmp_path], "gallery")
    res = run_search(world.app, world.investigator, encode(grace_hopper()), req(mode="identify"))
    assert res.candidates == []
    inv = run_search(world.app, world.investigator, encode(grace_hopper()), req())
    assert len(inv.candidates) == 1  # investigate mode shows it, scored, without a threshold
    assert inv.candidates[0].similarity < res.threshold  # type: ignore[operator]


def test_missing_fields_refused_and_ledgered(gallery: World) -> None:
    for field in ("case_ref", "purpose", "offence", "legal_basis"):
        with pytest.raises(ValidationError, match="missing"):
            run_search(gallery.app, gallery.investigator, encode(astronaut_face()),
                       req(**{field: "  "}))
    with gallery.app.db.read() as s:
        refused = ledger.read(s, kind="search.refused")
    assert len(refused) == 4
    assert all(e.actor == "ivy" for e in refused)


def test_roles_without_search_refused(gallery: World) -> None:
    for who in (gallery.admin, gallery.auditor):
        with pytest.raises(PolicyRefusal, match=r"rule roles\.search"):
            run_search(gallery.app, who, encode(astronaut_face()), req())


def test_several_faces_need_a_choice(gallery: World) -> None:
    with pytest.raises(FaceChoiceRequired) as info:
        run_search(gallery.app, gallery.investigator, encode(collage()), req())
    faces = info.value.details["faces"]
    # Faces are numbered 1, 2, ... left to right, in the error and in every request.
    assert [f["face"] for f in faces] == [1, 2] and faces[0]["box"][0] < faces[1]["box"][0]
    assert "1-2" in info.value.message and "left to right" in info.value.message
    right = run_search(gallery.app, gallery.investigator, encode(collage()), req(face=2))
    assert "grace" in (right.candidates[0].sources[0]["original_path"] or "")
    assert right.face == 2 and [f.face for f in right.probe_faces] == [1, 2]
    left = run_search(gallery.app, gallery.investigator, encode(collage()), req(face=1))
    assert left.candidates[0].source_url == "https://example.org/astro.jpg"
    for bad in (0, 3):
        with pytest.raises(ValidationError, match=r"out of range.*numbered 1-2"):
            run_search(gallery.app, gallery.investigator, encode(collage()), req(face=bad))
    # The ledger keeps its format: the entry's face_index stays the 0-based position.
    with gallery.app.db.read() as s:
        entries = [ledger.entry_dict(e)["payload"] for e in ledger.read(s, kind="search")]
    assert [p["face_index"] for p in entries[-2:]] == [1, 0]


def test_no_face_refused_and_ledgered(gallery: World) -> None:
    with pytest.raises(NoFaceError):
        run_search(gallery.app, gallery.investigator, noise_image(), req())
    with gallery.app.db.read() as s:
        assert ledger.read(s, kind="search.refused")[-1].payload is not None


def test_search_entry_holds_everything(gallery: World) -> None:
    res = run_search(gallery.app, gallery.investigator, encode(astronaut_face()), req(top_k=2))
    with gallery.app.db.read() as s:
        e = ledger.read(s, kind="search")[-1]
        assert ledger.verify(s).ok
    p = ledger.entry_dict(e)["payload"]
    assert e.seq == res.ledger_seq and e.case_ref == "CASE-1"
    for key in ("user", "role", "started_at", "finished_at", "case", "purpose", "offence",
                "legal_basis", "probe_sha256", "collections_searched", "model_id", "mode",
                "threshold", "top_k", "candidates"):
        assert key in p, key
    assert p["collections_searched"] == [{"collection": "gallery", "faces": 2}]
    assert [c["face_id"] for c in p["candidates"]] == [c.face_id for c in res.candidates]
    assert p["candidates"][0]["score"] == pytest.approx(res.candidates[0].similarity)


def test_unknown_collection_refused(gallery: World) -> None:
    with pytest.raises(ValidationError, match="unknown collection") as info:
        run_search(gallery.app, gallery.investigator, encode(astronaut_face()),
                   req(collections=["nope"]))
    # The error lists the valid collections, as ingest's does.
    assert "known collections: gallery" in info.value.message
    assert info.value.details["known"] == ["gallery"]


def test_input_rules_live_in_the_service(gallery: World) -> None:
    """The CLI, API and web refuse the same things: the service decides, and ledgers it."""
    for bad, needle in ((req(authorisation_ref="A" * 201), "authorisation reference is too long"),
                        (req(top_k=0), "top-k"), (req(mode="browse"), "mode")):
        with pytest.raises(ValidationError, match=needle):
            run_search(gallery.app, gallery.investigator, encode(astronaut_face()), bad)
        with gallery.app.db.read() as s:
            last = ledger.entry_dict(ledger.read(s, kind="search.refused")[-1])["payload"]
        assert last["code"] == "invalid_request" and needle in last["reason"]
    ok = run_search(gallery.app, gallery.investigator, encode(astronaut_face()),
                    req(authorisation_ref="A" * 200))
    assert ok.status == "done"


def test_detect_faces_is_a_service(gallery: World) -> None:
    found = detect_faces(gallery.app, gallery.investigator, encode(collage()))
    assert [f["face"] for f in found["faces"]] == [1, 2] and found["preview"] is None
    with pytest.raises(PermissionDeniedError):
        detect_faces(gallery.app, gallery.auditor, encode(collage()))
    with pytest.raises(NoFaceError):
        detect_faces(gallery.app, gallery.investigator, noise_image())
