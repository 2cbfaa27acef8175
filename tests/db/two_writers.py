"""Two write transactions on one ``Database`` from two threads, the second started while the
first is open: what each did, in order, and whether a read got through meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.engine import Database
from faceledger.db.schema import LedgerHead

Body = Callable[[Session], None]


def two_writers(db: Database, first: Body, second: Body, second_label: str, *,
                mark_on_entry: bool = False) -> tuple[list[str], list[str]]:
    """Run ``first`` in a write transaction held open until a read has been tried and 0.3 s
    have passed, and ``second`` in another; ``second_label`` is recorded after ``second`` ran,
    or (``mark_on_entry``) as soon as the second transaction's body is entered. Returns (order
    while the first was open, final order)."""
    holding, release = threading.Event(), threading.Event()
    order: list[str] = []

    def one() -> None:
        with db.write() as s:
            first(s)
            holding.set()
            release.wait(10)
            order.append("first committed")

    def two() -> None:
        holding.wait(10)
        with db.write() as s:
            if mark_on_entry:
                order.append(second_label)
            second(s)
            if not mark_on_entry:
                order.append(second_label)

    threads = [threading.Thread(target=one), threading.Thread(target=two)]
    for t in threads:
        t.start()
    assert holding.wait(10)
    time.sleep(0.3)
    with db.read() as s:  # not blocked by the open write transaction
        assert s.execute(select(LedgerHead.seq)).scalar_one() >= 1
    during = list(order)
    release.set()
    for t in threads:
        t.join(20)
    return during, order
