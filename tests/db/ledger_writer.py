"""A writer process for tests/db/test_postgres.py: appends ledger entries, one write
transaction each, to the database at a URL, starting when every writer is ready."""

from __future__ import annotations

from typing import Any

from faceledger.db.engine import Database
from faceledger.governance import ledger

KIND = "test.concurrent"


def append_entries(url: str, worker: int, n: int, barrier: Any) -> None:
    """``n`` entries with payload ``{"worker": worker, "i": i}``, each in its own transaction."""
    db = Database(url)
    try:
        barrier.wait(timeout=120)
        for i in range(n):
            with db.write() as s:
                ledger.append(s, KIND, {"worker": worker, "i": i}, actor=f"writer-{worker}")
    finally:
        db.dispose()
