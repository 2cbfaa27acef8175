"""Two-person review: one verdict per person (a repeat records nothing), and the queue of
candidates waiting for a second, different confirmation. Real models, real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from faceledger.accounts import users as accounts
from faceledger.accounts.users import Principal
from faceledger.db.schema import Review
from faceledger.errors import PermissionDeniedError
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger
from faceledger.oversight import subjects
from faceledger.search import results, review_queue
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.photos import astronaut_face, encode, grace_hopper

REQ = SearchRequest("REV-1", "criminal investigation", "robbery", "basis")


@pytest.fixture
def searched(world: World, tmp_path: Path) -> tuple[World, int, list[int], dict[str, Principal]]:
    d = tmp_path / "g"
    d.mkdir()
    (d / "astro.jpg").write_bytes(encode(astronaut_face()))
    (d / "grace.jpg").write_bytes(encode(grace_hopper()))
    Ingest(world.app, world.admin).run([d], "gallery")
    people = {"ivy": world.investigator}
    with world.app.db.write() as s:
        for name, role in (("ian", "investigator"), ("sue", "supervisor")):
            user, _ = accounts.create_user(s, name, role, actor=world.admin)
            people[name] = Principal(user.id, user.name, user.role)
    res = run_search(world.app, world.investigator, encode(grace_hopper()), REQ)
    return world, res.search_id, [c.face_id for c in res.candidates], people


def review_entries(world: World) -> int:
    with world.app.db.read() as s:
        return len(ledger.read(s, kind="review"))


def test_a_repeated_verdict_counts_and_ledgers_once(searched: tuple[World, int, list[int],
                                                                     dict[str, Principal]]) -> None:
    world, sid, faces, people = searched
    fid = faces[0]

    def review(who: str, decision: str, note: str = "") -> results.CandidateState:
        return results.review(world.app, people[who], sid, fid, decision, note)

    first = review("ivy", "confirmed", "same scar")
    assert (first.status, first.confirmations, first.repeat) == ("confirmed_once", ["ivy"], False)
    again = review("ivy", "confirmed", "still sure")
    assert (again.status, again.confirmations, again.repeat) == ("confirmed_once", ["ivy"], True)
    assert review_entries(world) == 1
    with world.app.db.read() as s:
        assert s.execute(select(func.count(Review.id))).scalar_one() == 1
        history = results.states(s, sid)[fid].history
    assert [(h["user"], h["decision"], h["note"]) for h in history] == [
        ("ivy", "confirmed", "same scar")]
    # A changed verdict is new: recorded and ledgered; changing back is new again.
    changed = review("ivy", "rejected", "on reflection, no")
    assert (changed.status, changed.repeat) == ("rejected", False)
    back = review("ivy", "confirmed")
    assert (back.status, back.confirmations, back.rejections) == ("confirmed_once", ["ivy"], [])
    assert review_entries(world) == 3
    second = review("sue", "confirmed", "agreed")
    assert (second.status, second.confirmations) == ("confirmed", ["ivy", "sue"])
    assert review("sue", "confirmed").repeat
    assert review_entries(world) == 4


def test_the_queue_lists_candidates_waiting_for_a_second_confirmation(
        searched: tuple[World, int, list[int], dict[str, Principal]]) -> None:
    world, sid, faces, people = searched
    assert len(faces) == 2

    def queue(who: str) -> list[review_queue.Waiting]:
        return review_queue.waiting(world.app, people[who])

    def count(who: str) -> int:
        return review_queue.waiting_count(world.app, people[who])

    assert queue("sue") == [] and count("sue") == 0
    results.review(world.app, people["ivy"], sid, faces[0], "confirmed", "same scar")
    results.review(world.app, people["ivy"], sid, faces[1], "rejected", "")
    # The supervisor sees every search's waiting candidates; the rejected one is not waiting.
    (w,) = queue("sue")
    assert (w.search_id, w.face_id, w.case, w.searcher, w.confirmed_by, w.note, w.rank,
            w.yours) == (sid, faces[0], "REV-1", "ivy", "ivy", "same scar", 1, False)
    assert w.similarity is not None and 0.9 < w.similarity <= 1.0
    assert count("sue") == 1
    # The one who confirmed cannot be the second: listed as theirs, not counted.
    (mine,) = queue("ivy")
    assert mine.yours and count("ivy") == 0
    # Another investigator does not see ivy's searches in the queue.
    assert queue("ian") == [] and count("ian") == 0
    # Roles that cannot review have nothing to count and no queue.
    assert review_queue.waiting_count(world.app, world.auditor) == 0
    with pytest.raises(PermissionDeniedError):
        review_queue.waiting(world.app, world.auditor)
    # The second confirmation empties the queue.
    results.review(world.app, people["sue"], sid, faces[0], "confirmed", "")
    assert queue("sue") == [] and queue("ivy") == []


def test_an_erased_candidate_leaves_the_queue(
        searched: tuple[World, int, list[int], dict[str, Principal]]) -> None:
    world, sid, faces, people = searched
    results.review(world.app, people["ivy"], sid, faces[0], "confirmed", "")
    assert review_queue.waiting_count(world.app, people["sue"]) == 1
    subjects.erase(world.app, world.admin, [faces[0]], "ERASE-REV")
    assert review_queue.waiting_count(world.app, people["sue"]) == 0
    assert review_queue.waiting(world.app, people["sue"]) == []
