from __future__ import annotations

import itertools

from sqlalchemy import delete, select, update

from faceledger.db.schema import LedgerEntry, LedgerHead
from faceledger.governance import ledger
from tests.conftest import BOTH_DATABASES, World

DB_BACKENDS = BOTH_DATABASES  # every test here runs on SQLite and on PostgreSQL


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


# ---- reading: pages newest first, cursors both ways, filters, summaries ----

def _notes(world: World, n: int, case: str = "PG-1") -> list[int]:
    with world.app.db.write() as s:
        return [ledger.append(s, "test.note", {"i": i}, actor="pager", case_ref=case).seq
                for i in range(n)]


def test_page_is_newest_first_with_cursors_both_ways(world: World) -> None:
    seqs = _notes(world, 12)
    _notes(world, 3, case="OTHER")  # filtered out below
    with world.app.db.read() as s:
        first = ledger.page(s, case_ref="PG-1", limit=5)
        assert [e.seq for e in first.entries] == seqs[::-1][:5]
        assert first.older == seqs[7] and first.newer is None
        second = ledger.page(s, case_ref="PG-1", limit=5, before=first.older)
        assert [e.seq for e in second.entries] == seqs[2:7][::-1]
        last = ledger.page(s, case_ref="PG-1", limit=5, before=second.older)
        assert [e.seq for e in last.entries] == seqs[1::-1] and last.older is None
        assert last.newer == seqs[1]
        back = ledger.page(s, case_ref="PG-1", limit=5, after=last.newer)  # the page just after
        assert [e.seq for e in back.entries] == seqs[2:7][::-1]
        oldest = ledger.page(s, case_ref="PG-1", limit=5, newest_first=False)
        assert [e.seq for e in oldest.entries] == seqs[:5] and oldest.newer == seqs[4]
        assert oldest.older is None
        past = ledger.page(s, case_ref="PG-1", limit=5, before=seqs[0])
        assert past.entries == [] and past.newer == seqs[0] - 1


def test_page_filters_kind_prefix_actor_and_time(world: World) -> None:
    seqs = _notes(world, 3)
    with world.app.db.read() as s:
        kinds = {e.kind for e in ledger.page(s, kind="test", limit=50).entries}
        assert kinds == {"test.note"}
        assert ledger.page(s, kind="test_", limit=50).entries == []  # '_' is not a wildcard
        mine = ledger.page(s, user="pager", limit=50).entries
        assert sorted(e.seq for e in mine) == seqs
        ts = mine[0].ts
        assert [e.seq for e in ledger.page(s, user="pager", since=ts).entries] == [mine[0].seq]
        assert ledger.page(s, user="pager", until=mine[-1].ts).entries == []


def test_summaries_are_one_readable_line() -> None:
    from faceledger.governance.ledger_summary import MAX_CHARS, summary

    line = summary("search", {"search_id": 7, "mode": "investigate", "purpose": "robbery case",
                              "offence": "robbery", "top_k": 20, "legal_basis": "PACE s.1",
                              "candidates": [{"rank": 1, "face_id": 3, "score": 0.9}] * 20})
    assert line == ("investigate search 7, robbery case / robbery, top-20 → 20 candidates; "
                    "basis: PACE s.1")
    assert "\n" not in summary("policy.loaded", {"sha256": "ab" * 32, "source": "x",
                                                 "text": "a\nb\n" * 500})
    assert summary("outcome", {"search_id": 2, "result": "charge", "date": "2025-01-02",
                               "note": "line one\nline two"}) \
        == "search 2: charge on 2025-01-02 — “line one line two”"
    long = summary("unknown.kind", {"k": "v" * 500})
    assert len(long) == MAX_CHARS and long.endswith("…")
    assert summary("search", {"candidates": 5}).startswith("candidates=5")  # odd shape
    assert "[purged: candidates]" in summary("search", {"search_id": 1, "__redacted__":
                                                        {"candidates": "ab"}})


def test_page_status_walks_only_new_entries_between_full_walks(world: World) -> None:
    from faceledger.governance.ledger_status import chain_status, forget

    key = str(world.app.settings.home)
    forget(key)
    _fill(world)
    with world.app.db.read() as s:
        full = chain_status(s, key)
    assert full["ok"] and full["new_checked"] == 0 and full["entries"] == full["head_seq"]
    _fill(world, 2)
    with world.app.db.read() as s:
        quick = chain_status(s, key)
    assert quick["ok"] and quick["new_checked"] == 2
    assert quick["entries"] == quick["head_seq"] == full["head_seq"] + 2
    assert quick["full_check_at"] == full["full_check_at"]
    # A new entry that does not link up is caught at once (a full walk names it) ...
    _fill(world, 1)
    last = _last_seq(world)
    with world.app.db.write() as s:
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == last).values(prev_hash="0" * 64))
    with world.app.db.read() as s:
        assert chain_status(s, key)["first_bad_seq"] == last
    # ... an edit to an old entry at the next full walk (here: at once, max_age=0).
    forget(key)
    with world.app.db.write() as s:
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == last).values(
            prev_hash=s.get(LedgerEntry, last - 1).hash))  # type: ignore[union-attr]
    with world.app.db.read() as s:
        assert chain_status(s, key)["ok"]
    with world.app.db.write() as s:
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == 2).values(actor="mallory"))
    with world.app.db.read() as s:
        assert chain_status(s, key)["ok"]  # within the full-walk interval: not yet walked
        late = chain_status(s, key, max_age=0)
    assert not late["ok"] and late["first_bad_seq"] == 2
