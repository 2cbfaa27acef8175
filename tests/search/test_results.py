"""Reading searches back as services: plain data, the read permission first, views of other
people's searches ledgered, and one verdict per person under concurrent reviews."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from faceledger.accounts import users as accounts
from faceledger.accounts.users import Principal
from faceledger.errors import NotFoundError, PermissionDeniedError, ValidationError
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger
from faceledger.search import face_access, results
from faceledger.search import view as search_view
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.photos import astronaut_face, encode, grace_hopper


@pytest.fixture
def searched(world: World, tmp_path: Path) -> tuple[World, int, Principal]:
    d = tmp_path / "g"
    d.mkdir()
    (d / "astro.jpg").write_bytes(encode(astronaut_face()))
    (d / "grace.jpg").write_bytes(encode(grace_hopper()))
    Ingest(world.app, world.admin).run([d], "gallery")
    with world.app.db.write() as s:
        sue, _ = accounts.create_user(s, "sue", "supervisor", actor=world.admin)
    res = run_search(world.app, world.investigator, encode(astronaut_face()),
                     SearchRequest("RS-1", "criminal investigation", "robbery", "basis"))
    return world, res.search_id, Principal(sue.id, sue.name, sue.role)


def viewed(world: World) -> int:
    with world.app.db.read() as s:
        return len(ledger.read(s, kind="search.viewed"))


def test_list_and_detail(searched: tuple[World, int, Principal]) -> None:
    world, sid, sue = searched
    (mine,) = results.list_searches(world.app, world.investigator, limit=0)  # kept to >= 1
    assert (mine.id, mine.user, mine.case, mine.status, mine.results) == (sid, "ivy", "RS-1",
                                                                          "done", 2)
    assert results.list_searches(world.app, sue) == []  # her own
    assert [r.id for r in results.list_searches(world.app, sue, mine=False)] == [sid]
    with pytest.raises(PermissionDeniedError):
        results.list_searches(world.app, world.auditor)
    own = results.search_detail(world.app, world.investigator, sid)
    assert own["case"] == "RS-1" and len(own["candidates"]) == 2 and viewed(world) == 0
    results.search_detail(world.app, sue, sid)  # someone else's: ledgered
    assert viewed(world) == 1
    with pytest.raises(NotFoundError):
        results.search_detail(world.app, sue, sid + 99)


def test_page_and_probe(searched: tuple[World, int, Principal]) -> None:
    world, sid, _ = searched
    page = search_view.search_page(world.app, world.investigator, sid)
    assert page.state["status"] == "done" and page.state["decision"] is None
    assert page.state["outcomes"] == [] and page.state["probe_kept"]
    assert len(page.detail["candidates"]) == 2
    probe = face_access.probe_photo(world.app, world.investigator, sid)
    assert probe.data == encode(astronaut_face()) and probe.path.endswith(".jpg")
    with pytest.raises(PermissionDeniedError):
        face_access.probe_photo(world.app, world.auditor, sid)


def test_concurrent_repeats_record_one_verdict(searched: tuple[World, int, Principal]
                                               ) -> None:
    world, sid, sue = searched
    fid = results.search_detail(world.app, world.investigator, sid)["candidates"][0]["face_id"]
    barrier = threading.Barrier(4)
    states: list[results.CandidateState] = []

    def confirm() -> None:
        barrier.wait()
        states.append(results.review(world.app, sue, sid, fid, "confirmed", ""))

    threads = [threading.Thread(target=confirm) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s.repeat for s in states) == [False, True, True, True]
    with world.app.db.read() as s:
        assert len(ledger.read(s, kind="review")) == 1
    with pytest.raises(ValidationError, match="decision"):
        results.review(world.app, sue, sid, fid, "maybe", "")
    with pytest.raises(NotFoundError):
        results.review(world.app, sue, sid, 10_000, "confirmed", "")
