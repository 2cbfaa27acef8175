from __future__ import annotations

import itertools

from sqlalchemy import delete, select, update

from faceledger import ledger
from faceledger.db.schema import LedgerEntry, LedgerHead
from tests.conftest import World


def _fill(world: World, n: int = 6) -> None:
    with world.app.db.write() as s:
        for i in range(n):
            ledger.append(s, "test.event", {"i": i}, actor="tester", case_ref=f"C{i}")


def _verify(world: World) -> ledger.VerifyReport:
    with world.app.db.read() as s:
        return ledger.verify(s)


def test_intact_chain_verifies(world: World) -> None:
    _fill(world)
    report = _verify(world)
    assert report.ok, report.reason
    assert report.entries == report.head_seq >= 6


def test_chain_links_each_entry_to_previous(world: World) -> None:
    _fill(world)
    with world.app.db.read() as s:
        rows = s.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars().all()
    assert rows[0].prev_hash == ledger.GENESIS
    for a, b in itertools.pairwise(rows):
        assert b.prev_hash == a.hash and b.seq == a.seq + 1


def _last_seq(world: World) -> int:
    with world.app.db.read() as s:
        head = s.get(LedgerHead, 1)
        assert head is not None
        return head.seq


def test_edited_payload_detected(world: World) -> None:
    _fill(world)
    target = _last_seq(world) - 3
    with world.app.db.write() as s:
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == target)
                  .values(payload='{"i":999}'))
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == target
    assert "payload" in (report.reason or "")


def test_edited_field_with_recomputed_digest_detected(world: World) -> None:
    _fill(world)
    target = _last_seq(world) - 2
    with world.app.db.write() as s:
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == target).values(actor="mallory"))
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == target


def test_deleted_entry_detected(world: World) -> None:
    _fill(world)
    target = _last_seq(world) - 2
    with world.app.db.write() as s:
        s.execute(delete(LedgerEntry).where(LedgerEntry.seq == target))
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == target
    assert "missing" in (report.reason or "")


def test_deleted_tail_detected(world: World) -> None:
    _fill(world)
    last = _last_seq(world)
    with world.app.db.write() as s:
        s.execute(delete(LedgerEntry).where(LedgerEntry.seq == last))
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == last


def test_inserted_entry_detected(world: World) -> None:
    _fill(world)
    target = _last_seq(world) - 2
    with world.app.db.write() as s:
        # Shift later entries up by one and forge an entry into the gap.
        for e in s.execute(select(LedgerEntry).where(LedgerEntry.seq >= target)
                           .order_by(LedgerEntry.seq.desc())).scalars():
            e.seq = e.seq + 1
            s.flush()
        prev = s.get(LedgerEntry, target - 1)
        assert prev is not None
        body = ledger.canonical_json({"forged": True})
        digest = ledger.payload_digest({"forged": True})
        ts = ledger.now_iso()
        s.add(LedgerEntry(seq=target, ts=ts, kind="search", actor="mallory", case_ref=None,
                          payload=body, payload_digest=digest, prev_hash=prev.hash,
                          hash=ledger.entry_hash(target, ts, "search", "mallory", None, digest,
                                                 prev.hash)))
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == target + 1
    assert "does not link" in (report.reason or "")


def test_reordered_entries_detected(world: World) -> None:
    _fill(world)
    a = _last_seq(world) - 3
    b = a + 1
    with world.app.db.write() as s:
        ea, eb = s.get(LedgerEntry, a), s.get(LedgerEntry, b)
        assert ea is not None and eb is not None
        ea.seq = -1
        s.flush()
        eb.seq = a
        s.flush()
        ea.seq = b
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == a


def test_failed_action_leaves_no_entry(world: World) -> None:
    before = _last_seq(world)
    try:
        with world.app.db.write() as s:
            ledger.append(s, "test.event", {"x": 1}, actor="t")
            raise RuntimeError("action failed after its entry was written")
    except RuntimeError:
        pass
    assert _last_seq(world) == before
    assert _verify(world).ok
