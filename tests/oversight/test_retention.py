"""Purges keep the chain verifiable and tamper-evident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from faceledger.db.schema import LedgerEntry, Search
from faceledger.errors import ConflictError
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger
from faceledger.oversight.retention import add_authorisation, run_retention
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.governance.test_policy import use_policy
from tests.photos import astronaut_face, encode


@pytest.fixture
def searched(world: World, tmp_path: Path) -> tuple[World, int]:
    (tmp_path / "a.jpg").write_bytes(encode(astronaut_face()))
    Ingest(world.app, world.admin).run([tmp_path], "gallery")
    res = run_search(world.app, world.investigator, encode(astronaut_face()),
                     SearchRequest("R-1", "criminal investigation", "robbery", "basis"))
    return world, res.search_id


def age(world: World, search_id: int, days: float) -> None:
    with world.app.db.write() as s:
        s.execute(update(Search).where(Search.id == search_id).values(
            started_at=datetime.now(UTC) - timedelta(days=days)))


def verify(world: World) -> ledger.VerifyReport:
    with world.app.db.read() as s:
        return ledger.verify(s)


def test_result_set_purge_keeps_chain_valid_and_tamper_evident(
        searched: tuple[World, int]) -> None:
    world, sid = searched
    age(world, sid, 400)  # past both the 90-day probe and 365-day result retention
    done = run_retention(world.app, world.admin)
    assert done["probes"] == [sid] and done["results"] == [sid]
    with world.app.db.read() as s:
        row = s.get(Search, sid)
        assert row is not None and row.probe_path is None and row.probe_embedding is None
        entry = s.get(LedgerEntry, row.ledger_seq)
        assert entry is not None
        payload = ledger.entry_dict(entry)["payload"]
    assert "candidates" not in payload and "candidates" in payload["__redacted__"]
    assert payload["case"] == "R-1"  # who/why stays; only the result set went
    assert verify(world).ok
    assert not list((world.app.settings.home / "probes").rglob("*.*"))
    # Still detects tampering: edit a kept field of the redacted entry ...
    with world.app.db.write() as s:
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == entry.seq).values(
            payload=entry.payload.replace("R-1", "R-2")))  # type: ignore[union-attr]
    report = verify(world)
    assert not report.ok and report.first_bad_seq == entry.seq


def test_fake_redaction_detected(searched: tuple[World, int]) -> None:
    world, sid = searched
    with world.app.db.read() as s:
        row = s.get(Search, sid)
        assert row is not None
        entry = s.get(LedgerEntry, row.ledger_seq)
        assert entry is not None
    import json

    payload = json.loads(entry.payload or "{}")
    cands = payload.pop("candidates")
    payload["__redacted__"] = {"candidates": ledger.sha256_hex(ledger.canonical_json(cands))}
    with world.app.db.write() as s:  # digest-consistent, but no chained redaction entry
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == entry.seq).values(
            payload=ledger.canonical_json(payload)))
    report = verify(world)
    assert not report.ok and report.first_bad_seq == entry.seq
    assert "without a redaction entry" in (report.reason or "")


def test_young_searches_untouched(searched: tuple[World, int]) -> None:
    world, sid = searched
    age(world, sid, 100)  # probe past 90 days, results within 365
    done = run_retention(world.app, world.admin)
    assert done == {"probes": [sid], "results": [], "unauthorised": []}
    with world.app.db.read() as s:
        purged = ledger.read(s, kind="retention.probe_purged")
    assert [(e.actor, e.case_ref) for e in purged] == [("root", "R-1")]  # who ran it
    assert run_retention(world.app, world.admin) == {  # nothing left to do: nothing done
        "probes": [], "results": [], "unauthorised": []}


def test_urgent_search_purged_without_authorisation(world: World, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(encode(astronaut_face()))
    Ingest(world.app, world.admin).run([tmp_path], "gallery")
    use_policy(world, tmp_path)  # intelligence needs an authorisation reference
    req = SearchRequest("U-1", "intelligence", "robbery", "basis", urgent=True)
    late = run_search(world.app, world.investigator, encode(astronaut_face()), req)
    assert late.status == "done" and late.candidates  # urgent: goes ahead at once
    on_time = run_search(world.app, world.investigator, encode(astronaut_face()), req)
    add_authorisation(world.app, world.investigator, on_time.search_id, "AUTH-77")
    done = run_retention(world.app, world.admin, now=datetime.now(UTC) + timedelta(hours=49))
    assert done["unauthorised"] == [late.search_id]
    with pytest.raises(ConflictError, match="already purged"):
        add_authorisation(world.app, world.investigator, late.search_id, "AUTH-78")
    assert verify(world).ok
