"""Every rule of the policy, each refusal naming its rule, and the approval flow."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from faceledger.accounts import users as accounts
from faceledger.db.schema import Search
from faceledger.errors import ConfigError, ConflictError, PermissionDeniedError, PolicyRefusal
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger
from faceledger.governance.policy import load_policy
from faceledger.search import approval
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.photos import astronaut_face, encode, grace_hopper

POLICY = """
purposes = ["criminal investigation", "intelligence"]
offences = ["robbery", "fraud"]
[roles]
"*" = ["investigator", "supervisor"]
restricted = ["supervisor"]
[approval]
rules = [{ name = "fraud-identify", offences = ["fraud"], modes = ["identify"] }]
[authorisation]
required_for_purposes = ["intelligence"]
urgent_window_hours = 48
[quota]
searches_per_user_per_day = 3
"""


def use_policy(world: World, tmp_path: Path, text: str = POLICY) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    world.app.settings.policy_file = path
    world.app._policy = None


def req(**kw: object) -> SearchRequest:
    base: dict[str, object] = dict(case_ref="P-1", purpose="criminal investigation",
                                   offence="robbery", legal_basis="basis")
    base.update(kw)
    return SearchRequest(**base)  # type: ignore[arg-type]


@pytest.fixture
def policed(world: World, tmp_path: Path) -> World:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(encode(astronaut_face()))
    Ingest(world.app, world.admin).run([src], "gallery")
    with world.app.db.write() as s:
        from faceledger.gallery.collections import add_collection

        add_collection(s, "restricted", "basis", "", actor=world.admin)
    use_policy(world, tmp_path)
    return world


def refused_rule(world: World, r: SearchRequest) -> str:
    with pytest.raises(PolicyRefusal) as info:
        run_search(world.app, world.investigator, encode(astronaut_face()), r)
    rule = str(info.value.details["rule"])
    assert rule in info.value.message
    with world.app.db.read() as s:
        last = ledger.entry_dict(ledger.read(s, kind="search.refused")[-1])
    assert last["payload"]["rule"] == rule
    return rule


def test_each_rule_names_itself(policed: World) -> None:
    assert refused_rule(policed, req(purpose="curiosity")) == "purposes"
    assert refused_rule(policed, req(offence="littering")) == "offences"
    assert refused_rule(policed, req(collections=["restricted"])) == "roles.collections"
    assert refused_rule(policed, req(purpose="intelligence")) == "authorisation.required"
    with pytest.raises(PolicyRefusal) as info:
        run_search(policed.app, policed.admin, encode(astronaut_face()), req())
    assert info.value.details["rule"] == "roles.search"


def test_authorisation_reference_or_urgent(policed: World) -> None:
    ok = run_search(policed.app, policed.investigator, encode(astronaut_face()),
                    req(purpose="intelligence", authorisation_ref="WARRANT-9"))
    assert ok.status == "done"
    urgent = run_search(policed.app, policed.investigator, encode(astronaut_face()),
                        req(purpose="intelligence", urgent=True))
    with policed.app.db.read() as s:
        row = s.get(Search, urgent.search_id)
        assert row is not None and row.auth_deadline is not None
        hours = (row.auth_deadline - row.started_at).total_seconds() / 3600
    assert hours == pytest.approx(48)


def test_daily_quota(policed: World) -> None:
    for _ in range(3):
        run_search(policed.app, policed.investigator, encode(astronaut_face()), req())
    assert refused_rule(policed, req()) == "quota.searches_per_user_per_day"


def test_approval_flow(policed: World) -> None:
    admin = policed.admin
    with policed.app.db.write() as s:
        _, t1 = accounts.create_user(s, "sam", "supervisor", actor=admin)
        _, t2 = accounts.create_user(s, "sid", "supervisor", actor=admin)
    sam, sid = policed.app.authenticate(t1), policed.app.authenticate(t2)
    held = run_search(policed.app, sam, encode(astronaut_face()),
                      req(offence="fraud", mode="identify"))
    assert held.status == "pending" and held.candidates == []
    assert held.approval_rules == ["fraud-identify"]
    assert [r.id for r in approval.pending(policed.app, sid)] == [held.search_id]
    with pytest.raises(PermissionDeniedError):
        approval.decide(policed.app, sam, held.search_id, True, "my own")
    with pytest.raises(PermissionDeniedError):
        approval.pending(policed.app, policed.investigator)
    result = approval.decide(policed.app, sid, held.search_id, True, "proportionate")
    assert result is not None and result.status == "done" and len(result.candidates) == 1
    assert result.user == "sam"
    with pytest.raises(ConflictError):
        approval.decide(policed.app, sid, held.search_id, False, "too late")
    # A refused request never shows results and loses its probe.
    other = run_search(policed.app, sam, encode(grace_hopper()),
                       req(offence="fraud", mode="identify", case_ref="P-2"))
    assert approval.decide(policed.app, sid, other.search_id, False, "not justified") is None
    with policed.app.db.read() as s:
        row = s.get(Search, other.search_id)
        assert row is not None and row.status == "refused" and row.probe_path is None
        kinds = [e.kind for e in ledger.read(s, case_ref="P-2")]
        assert kinds == ["search.requested", "search.approval_refused"]
        first = [e.kind for e in ledger.read(s, case_ref="P-1") if e.kind.startswith("search")]
        assert first[-3:] == ["search.requested", "search.approved", "search"]
        assert ledger.verify(s).ok


def test_policy_hash_ledgered_once_per_change(world: World, tmp_path: Path) -> None:
    use_policy(world, tmp_path)
    world.app.policy()
    world.app._policy = None
    world.app.policy()
    use_policy(world, tmp_path, POLICY.replace("= 3", "= 4"))
    world.app.policy()
    with world.app.db.read() as s:
        entries = [ledger.entry_dict(e) for e in ledger.read(s, kind="policy.loaded")]
    assert len(entries) == 2
    assert entries[0]["payload"]["sha256"] != entries[1]["payload"]["sha256"]


@pytest.mark.parametrize("text,needle", [
    ("purposes = []\noffences = ['x']", "purposes"),
    ("purposes = ['a']\noffences = ['x']\n[quota]\nsearches_per_user_per_day = 0", "quota"),
    ("purposes = ['a']\noffences = ['x']\n[roles]\nx = ['investigator']", "roles"),
    ("purposes = ['a']\noffences = ['x']\nsurprise = 1", "surprise"),
    ("purposes = ['a'", "not valid TOML"),
])
def test_invalid_policy_refused_on_load(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_policy(p)


def test_packaged_default_is_valid() -> None:
    policy = load_policy(None).policy
    assert "criminal investigation" in policy.purposes and policy.quota.searches_per_user_per_day


def test_pending_search_rows_hold_no_results(policed: World) -> None:
    with policed.app.db.read() as s:
        assert s.execute(select(Search).where(Search.status == "pending")).first() is None
