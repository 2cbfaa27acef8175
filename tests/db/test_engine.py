"""The database layer on SQLite: a process's writers queue on a lock before they begin, so a
writer is not left sleeping in SQLite's busy handler (1, 2, 5 ... 100 ms steps) after the
lock is free; reads never wait."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from faceledger.governance import ledger
from tests.conftest import World
from tests.db.two_writers import two_writers


def test_a_second_writer_waits_before_its_transaction_opens_and_reads_go_ahead(
        world: World) -> None:
    db = world.app.db
    assert db.is_sqlite

    def first(s: Session) -> None:
        ledger.append(s, "test.first", {"n": 1}, actor="t")

    def second(s: Session) -> None:
        # SQLAlchemy opens the transaction lazily: without the queue this body would run at
        # once and its statement would wait in SQLite's busy handler.
        ledger.append(s, "test.second", {"n": 2}, actor="t")

    # The second body only runs once the first has committed: "second entered" cannot be
    # recorded while the first is open.
    during, order = two_writers(db, first, second, "second entered", mark_on_entry=True)
    assert during == []
    assert order == ["first committed", "second entered"]
    with db.read() as s:
        kinds = s.execute(text("SELECT kind FROM ledger ORDER BY seq DESC LIMIT 2")).scalars()
        assert list(kinds) == ["test.second", "test.first"]
        assert ledger.verify(s).ok


def test_a_writer_in_the_same_thread_may_nest_the_queue(world: World) -> None:
    """The queue is re-entrant: a thread that holds it is not blocked by itself (its nested
    transaction then meets SQLite's own lock, as before)."""
    db = world.app.db
    with db._queued(), db.write() as s:
        ledger.append(s, "test.nested", {}, actor="t")
    with db.read() as s:
        assert s.execute(text("SELECT kind FROM ledger ORDER BY seq DESC LIMIT 1")).scalar() \
            == "test.nested"
