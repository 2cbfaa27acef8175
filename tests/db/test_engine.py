"""The database layer on SQLite: a process's writers queue on a lock before they begin, so a
writer is not left sleeping in SQLite's busy handler (1, 2, 5 ... 100 ms steps) after the
lock is free; reads never wait."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select, text

from faceledger.db.schema import LedgerHead
from faceledger.governance import ledger
from tests.conftest import World


def test_a_second_writer_waits_before_its_transaction_opens_and_reads_go_ahead(
        world: World) -> None:
    db = world.app.db
    assert db.is_sqlite
    holding, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        with db.write() as s:
            ledger.append(s, "test.first", {"n": 1}, actor="t")
            holding.set()
            release.wait(10)
            order.append("first committed")

    def second() -> None:
        holding.wait(10)
        with db.write() as s:
            # SQLAlchemy opens the transaction lazily: without the queue this line would
            # run at once, and the statement below would wait in SQLite's busy handler.
            order.append("second entered")
            ledger.append(s, "test.second", {"n": 2}, actor="t")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    assert holding.wait(10)
    time.sleep(0.3)
    with db.read() as s:  # not blocked by the open write transaction
        assert s.execute(select(LedgerHead.seq)).scalar_one() >= 1
    assert order == []
    release.set()
    for t in threads:
        t.join(20)
    assert order == ["first committed", "second entered"]
    with db.read() as s:
        kinds = s.execute(text("SELECT kind FROM ledger ORDER BY seq DESC LIMIT 2")).scalars()
        assert list(kinds) == ["test.second", "test.first"]
    with db.read() as s:
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
