"""`ledger verify` cross-checks the records the chain vouches for: a search, review, outcome or
approval row deleted (or altered) with raw SQL is named, though the chain itself is intact; a
ledgered retention purge is not a problem. Real SQLite, real models, the real CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from faceledger.accounts import users as accounts
from faceledger.cli.main import app as cli
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger_service
from faceledger.governance.ledger_status import chain_status, forget
from faceledger.oversight.retention import run_retention
from faceledger.search import results
from faceledger.search.approval import decide
from faceledger.search.outcomes import record_outcome
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.governance.test_policy import use_policy
from tests.photos import astronaut_face, encode, grace_hopper


@pytest.fixture
def searched(world: World, tmp_path: Path) -> tuple[World, int, int]:
    """Two done searches; the first has a review and an outcome."""
    (tmp_path / "a.jpg").write_bytes(encode(astronaut_face()))
    (tmp_path / "g.jpg").write_bytes(encode(grace_hopper()))
    Ingest(world.app, world.admin).run([tmp_path], "gallery")
    req = SearchRequest("REC-1", "criminal investigation", "robbery", "basis")
    first = run_search(world.app, world.investigator, encode(astronaut_face()), req)
    second = run_search(world.app, world.investigator, encode(grace_hopper()), req)
    results.review(world.app, world.investigator, first.search_id,
                   first.candidates[0].face_id, "confirmed", "same ear")
    record_outcome(world.app, world.investigator, first.search_id, "lead_pursued")
    return world, first.search_id, second.search_id


def _sql(world: World, statement: str, **params: object) -> None:
    with world.app.db.write() as s:
        s.execute(text(statement), params)


def _verify(world: World) -> ledger_service.ledger.VerifyReport:
    return ledger_service.verify_chain(world.app, world.auditor)


def _cli_verify(world: World) -> tuple[int, str]:
    env = {"FACELEDGER_HOME": str(world.app.settings.home),
           "FACELEDGER_TOKEN": world.admin_token}
    res = CliRunner().invoke(cli, ["ledger", "verify"], env=env)
    # (faceledger.cli.main.main turns the error into its message and exit code 6)
    return res.exit_code, res.stdout + res.stderr + str(res.exception or "")


def test_sound_records_verify(searched: tuple[World, int, int]) -> None:
    world, _, _ = searched
    report = _verify(world)
    assert report.ok, report.reason
    assert report.record_problems == ()
    code, out = _cli_verify(world)
    assert code == 0 and out.startswith("OK:"), out


def test_a_deleted_search_row_is_named(searched: tuple[World, int, int]) -> None:
    world, _, sid = searched
    with world.app.db.read() as s:
        seq = s.execute(text("SELECT ledger_seq FROM searches WHERE id = :i"),
                        {"i": sid}).scalar_one()
    _sql(world, "DELETE FROM searches WHERE id = :i", i=sid)
    report = _verify(world)
    assert not report.ok
    assert report.first_bad_seq == seq
    assert f"search {sid}" in (report.reason or "") and "deleted" in (report.reason or "")
    code, out = _cli_verify(world)
    assert code != 0 and f"search {sid}" in out and f"at entry {seq}" in out


def test_a_deleted_review_row_is_named(searched: tuple[World, int, int]) -> None:
    world, _, _ = searched
    with world.app.db.read() as s:
        seq = s.execute(text("SELECT ledger_seq FROM reviews")).scalar_one()
    _sql(world, "DELETE FROM reviews")
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == seq
    assert "review" in (report.reason or "") and "reviews record" in (report.reason or "")
    code, out = _cli_verify(world)
    assert code != 0 and f"entry {seq}" in out


def test_deleted_outcome_and_altered_records_are_named(searched: tuple[World, int, int]) -> None:
    world, _, other = searched
    _sql(world, "DELETE FROM outcomes")
    _sql(world, "UPDATE searches SET purpose = 'curiosity' WHERE id = :i", i=other)
    _sql(world, "UPDATE reviews SET decision = 'rejected'")
    problems = _verify(world).record_problems
    assert any(f"search {other} does not match" in p and "purpose" in p for p in problems)
    assert any(p.startswith("review ") and "decision" in p for p in problems)
    assert any("(outcome) has no outcomes record" in p for p in problems)


def test_a_forged_record_without_entry_is_named(searched: tuple[World, int, int]) -> None:
    world, sid, _ = searched
    _sql(world, "INSERT INTO reviews (search_id, face_id, user_id, decision, note, created_at, "
         "ledger_seq) VALUES (:s, 1, 1, 'confirmed', '', '2026-01-01', 999999)", s=sid)
    report = _verify(world)
    assert not report.ok and report.first_bad_seq is None
    assert "has no ledger entry" in (report.reason or "")


def test_an_approval_cleared_from_its_search_is_named(world: World, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(encode(astronaut_face()))
    Ingest(world.app, world.admin).run([tmp_path], "gallery")
    use_policy(world, tmp_path)
    with world.app.db.write() as s:
        _, tok = accounts.create_user(s, "sue", "supervisor", actor=world.admin)
    req = SearchRequest("APR-1", "criminal investigation", "fraud", "basis", mode="identify")
    held = run_search(world.app, world.investigator, encode(astronaut_face()), req)
    assert held.status == "pending"
    assert _verify(world).ok  # a held search matches its search.requested entry

    decide(world.app, world.app.authenticate(tok), held.search_id, True, "proportionate")
    assert _verify(world).ok
    _sql(world, "UPDATE searches SET approver_id = NULL WHERE id = :i", i=held.search_id)
    report = _verify(world)
    assert not report.ok and "approval decision" in (report.reason or "")


def test_a_retention_purge_still_verifies(searched: tuple[World, int, int]) -> None:
    world, sid, other = searched
    done = run_retention(world.app, world.admin, now=datetime.now(UTC) + timedelta(days=400))
    assert sid in done["results"] and other in done["results"]
    report = _verify(world)
    assert report.ok, report.record_problems
    code, out = _cli_verify(world)
    assert code == 0, out


def test_the_ledger_page_status_runs_the_cross_check(searched: tuple[World, int, int]) -> None:
    world, _, sid = searched
    key = str(world.app.settings.home)
    forget(key)
    with world.app.db.read() as s:
        assert chain_status(s, key)["ok"] is True
    _sql(world, "DELETE FROM searches WHERE id = :i", i=sid)
    forget(key)
    with world.app.db.read() as s:
        status = chain_status(s, key)
    assert status["ok"] is False and f"search {sid}" in status["reason"]
    assert status["record_problems"]


def test_only_a_ledgered_retention_or_erasure_may_account_for_a_gone_record(
        searched: tuple[World, int, int]) -> None:
    from faceledger.governance import ledger

    world, _, sid = searched
    with world.app.db.read() as s:
        seq = s.execute(text("SELECT ledger_seq FROM searches WHERE id = :i"),
                        {"i": sid}).scalar_one()
    _sql(world, "DELETE FROM searches WHERE id = :i", i=sid)
    with world.app.db.write() as s:  # any other kind does not count
        ledger.append(s, "note.purged", {"records_purged": {"searches": [sid]}}, actor="root")
    assert not _verify(world).ok
    with world.app.db.write() as s:
        ledger.append(s, "retention.records_purged", {"records_purged": {"searches": [sid]}},
                      actor="root")
    report = _verify(world)
    assert report.ok, report.record_problems
    assert seq > 0
