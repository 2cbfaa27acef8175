"""The face-opening services called directly: the purpose rule (a search that returned the face;
a held search's probe for its searcher and supervisors only; nothing once purged) and the
batched ledger entry (one per user and search per window, a new one after it)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from faceledger.accounts import users as accounts
from faceledger.accounts.users import Principal
from faceledger.errors import NotFoundError, PermissionDeniedError, ValidationError
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger
from faceledger.oversight.retention import run_retention
from faceledger.search import face_access
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.governance.test_policy import use_policy
from tests.photos import astronaut_face, encode, grace_hopper


@pytest.fixture
def people(world: World, tmp_path: Path) -> dict[str, Principal]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(encode(astronaut_face()))
    (src / "g.jpg").write_bytes(encode(grace_hopper()))
    Ingest(world.app, world.admin).run([src], "gallery")
    tokens = {}
    with world.app.db.write() as s:
        for name, role in (("ian", "investigator"), ("sue", "supervisor")):
            tokens[name] = accounts.create_user(s, name, role, actor=world.admin)[1]
    return {"ivy": world.investigator,
            **{name: world.app.authenticate(tok) for name, tok in tokens.items()}}


def _opened(world: World) -> list[dict[str, object]]:
    with world.app.db.read() as s:
        return [{"actor": e.actor, **json.loads(e.payload or "{}")}
                for e in ledger.read(s, kind=face_access.KIND)]


def test_purpose_is_required_and_checked(world: World, people: dict[str, Principal]) -> None:
    ivy = people["ivy"]
    res = run_search(world.app, ivy, encode(astronaut_face()),
                     SearchRequest("FA-S1", "criminal investigation", "robbery", "b", top_k=1))
    fid = res.candidates[0].face_id
    with pytest.raises(ValidationError) as exc:
        face_access.face_thumbnail(world.app, ivy, fid, None)
    assert exc.value.details["field"] == "search"
    with pytest.raises(NotFoundError, match="not among the results"):
        face_access.face_thumbnail(world.app, ivy, 3 - fid, res.search_id)
    with pytest.raises(PermissionDeniedError):
        face_access.face_thumbnail(world.app, world.auditor, fid, res.search_id)
    assert _opened(world) == []  # refusals open nothing
    assert face_access.face_thumbnail(world.app, ivy, fid, res.search_id).data[:2] == b"\xff\xd8"
    assert len(_opened(world)) == 1


def test_a_new_window_writes_a_new_entry(world: World, people: dict[str, Principal]) -> None:
    ivy = people["ivy"]
    world.app.settings.face_open_window_s = 1
    res = run_search(world.app, ivy, encode(astronaut_face()),
                     SearchRequest("FA-S2", "criminal investigation", "robbery", "b"))
    fid = res.candidates[0].face_id
    for _ in range(3):
        face_access.face_thumbnail(world.app, ivy, fid, res.search_id)
    assert len(_opened(world)) == 1
    time.sleep(1.1)
    face_access.probe_photo(world.app, ivy, res.search_id)
    entries = _opened(world)
    assert len(entries) == 2 and entries[1]["first"] == {"probe": res.search_id}
    face_access.probe_photo(world.app, people["ian"], res.search_id)  # another user: own entry
    assert [e["actor"] for e in _opened(world)] == ["ivy", "ivy", "ian"]


def test_a_held_search_s_probe_is_for_its_searcher_and_supervisors(
        world: World, people: dict[str, Principal], tmp_path: Path) -> None:
    use_policy(world, tmp_path)  # fraud in identify mode is held for approval
    held = run_search(world.app, people["ivy"], encode(astronaut_face()),
                      SearchRequest("FA-S3", "criminal investigation", "fraud", "b",
                                    mode="identify"))
    assert held.status == "pending"
    with pytest.raises(PermissionDeniedError, match="held for approval"):
        face_access.probe_photo(world.app, people["ian"], held.search_id)
    assert face_access.probe_photo(world.app, people["sue"], held.search_id).data
    (entry,) = _opened(world)
    assert (entry["actor"], entry["task"], entry["faces"]) == ("sue", "approval", [])


def test_purged_results_open_nothing(world: World, people: dict[str, Principal]) -> None:
    ivy = people["ivy"]
    res = run_search(world.app, ivy, encode(astronaut_face()),
                     SearchRequest("FA-S4", "criminal investigation", "robbery", "b"))
    fid, image_id = res.candidates[0].face_id, res.candidates[0].image_id
    assert face_access.image_file(world.app, ivy, image_id, res.search_id).data
    run_retention(world.app, world.admin, now=datetime.now(UTC) + timedelta(days=400))
    with pytest.raises(NotFoundError):
        face_access.face_thumbnail(world.app, ivy, fid, res.search_id)
    with pytest.raises(NotFoundError):
        face_access.image_file(world.app, ivy, image_id, res.search_id)
    with pytest.raises(NotFoundError, match="not kept"):
        face_access.probe_photo(world.app, ivy, res.search_id)


def test_the_erasure_task_s_look_at_faces_is_ledgered(world: World,
                                                      people: dict[str, Principal]) -> None:
    from faceledger.oversight import subjects

    found = subjects.erase_preview(world.app, world.admin, encode(astronaut_face()),
                                   reference="ER-1")
    assert found
    with world.app.db.read() as s:
        (entry,) = ledger.read(s, kind="subject.erase_preview")
        payload = json.loads(entry.payload or "{}")
    assert entry.actor == "root" and payload["reference"] == "ER-1"
    assert payload["face_ids"] == [f.face_id for f in found]
    assert payload["faces_shown"] == len(found)
