"""Approval as a service: plain data out, the approval state checked in the write transaction
that records the decision (two supervisors deciding at once: one wins, one conflict)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from faceledger.accounts import users as accounts
from faceledger.accounts.users import Principal
from faceledger.errors import ConflictError, NotFoundError, ValidationError
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger
from faceledger.search import approval
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.photos import astronaut_face, encode

POLICY = """
purposes = ["criminal investigation"]
offences = ["robbery", "fraud"]
[approval]
rules = [{ name = "fraud", offences = ["fraud"] }]
"""


@pytest.fixture
def held(world: World, tmp_path: Path) -> tuple[World, int, list[Principal]]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(encode(astronaut_face()))
    Ingest(world.app, world.admin).run([src], "gallery")
    (world.app.settings.home / "policy.toml").write_text(POLICY)
    world.app._policy = None
    sups = []
    with world.app.db.write() as s:
        for name in ("sam", "sid", "sol"):
            user, _ = accounts.create_user(s, name, "supervisor", actor=world.admin)
            sups.append(Principal(user.id, user.name, user.role))
    res = run_search(world.app, world.investigator, encode(astronaut_face()),
                     SearchRequest("AP-1", "criminal investigation", "fraud", "basis"))
    assert res.status == "pending"
    return world, res.search_id, sups


def test_pending_is_plain_data(held: tuple[World, int, list[Principal]]) -> None:
    world, sid, (sam, _, _) = held
    (p,) = approval.pending(world.app, sam)
    assert isinstance(p, approval.PendingSearch)
    assert (p.id, p.user, p.case_ref, p.approval_rules) == (sid, "ivy", "AP-1", ["fraud"])
    page = approval.approvals_page(world.app, sam, sid)
    assert page.pending == [p] and page.decided is None  # still pending: nothing decided


def test_two_supervisors_at_once_one_decision(held: tuple[World, int, list[Principal]]
                                              ) -> None:
    world, sid, (sam, sid_, sol) = held
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def decide(who: Principal, approve: bool) -> None:
        barrier.wait()
        try:
            approval.decide(world.app, who, sid, approve, f"{who.name} decides")
            outcomes[who.name] = "decided"
        except ConflictError:
            outcomes[who.name] = "conflict"

    threads = [threading.Thread(target=decide, args=(sam, True)),
               threading.Thread(target=decide, args=(sid_, False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["conflict", "decided"]
    with world.app.db.read() as s:
        kinds = [e.kind for e in ledger.read(s, case_ref="AP-1")]
    assert kinds.count("search.approved") + kinds.count("search.approval_refused") == 1
    decided = approval.approvals_page(world.app, sol, sid).decided
    assert decided is not None and decided.status in ("done", "refused")
    assert ("search" in kinds) == (decided.status == "done")
    with pytest.raises(ConflictError):
        approval.decide(world.app, sol, sid, True, "late")


def test_decision_input_rules(held: tuple[World, int, list[Principal]]) -> None:
    world, sid, (sam, _, _) = held
    with pytest.raises(ValidationError, match="reason"):
        approval.decide(world.app, sam, sid, True, "  ")
    with pytest.raises(ValidationError, match="too long"):
        approval.decide(world.app, sam, sid, True, "x" * 2001)
    with pytest.raises(NotFoundError):
        approval.decide(world.app, sam, sid + 99, True, "no such search")
    result = approval.decide(world.app, sam, sid, True, "proportionate")
    assert result is not None and result.user == "ivy" and result.status == "done"
    assert len(result.candidates) == 1 and result.candidates[0].collection == "gallery"
