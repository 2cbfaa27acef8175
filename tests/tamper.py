"""What an attacker with write access to the database (and nothing else: not the log's signing
key) can do to the ledger, done the way a careful one would, for the transparency-log tests.

``cut_tail`` works on the database file with Python's ``sqlite3`` module only (plain SQL, no
faceledger code); ``rewrite_entry`` edits one entry and recomputes everything the database holds
that depends on it (later chain hashes, the head row, the Merkle tree)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import select

from faceledger.core import Faceledger
from faceledger.db.schema import LedgerEntry, LedgerHead
from faceledger.governance import ledger, tree


def db_file(app_or_home: Faceledger | Path) -> Path:
    home = app_or_home if isinstance(app_or_home, Path) else app_or_home.settings.home
    return home / "faceledger.db"


def fill(app: Faceledger, n: int, kind: str = "test.event") -> int:
    """Append ``n`` entries in one write transaction; the head's seq after."""
    with app.db.write() as s:
        for i in range(n):
            last = ledger.append(s, kind, {"i": i}, actor="tester", case_ref=f"C{i % 3}")
        return last.seq


def head_seq(app: Faceledger) -> int:
    with app.db.read() as s:
        head = s.get(LedgerHead, 1)
        return head.seq if head else 0


def cut_tail(db_path: Path, keep: int) -> int:
    """Delete every entry after ``keep``, rewind the head to entry ``keep``, and remove what
    would give the cut away: the Merkle tree nodes whose range reaches past ``keep`` leaves
    (node (level L, idx i) covers leaves [i * 2**L, (i + 1) * 2**L)), the checkpoints larger
    than ``keep`` and their cosignatures. Returns how many entries were cut."""
    con = sqlite3.connect(db_path, timeout=30)
    try:
        with con:
            (kept_hash,) = con.execute("SELECT hash FROM ledger WHERE seq = ?", (keep,)).fetchone()
            cut = con.execute("DELETE FROM ledger WHERE seq > ?", (keep,)).rowcount
            con.execute("UPDATE ledger_head SET seq = ?, hash = ? WHERE id = 1", (keep, kept_hash))
            con.execute("DELETE FROM ledger_tree WHERE (idx + 1) * (1 << level) > ?", (keep,))
            con.execute("DELETE FROM ledger_cosignatures WHERE checkpoint_id IN "
                        "(SELECT id FROM ledger_checkpoints WHERE size > ?)", (keep,))
            con.execute("DELETE FROM ledger_checkpoints WHERE size > ?", (keep,))
        return int(cut)
    finally:
        con.close()


def delete_checkpoints(db_path: Path) -> None:
    """Remove every stored checkpoint and cosignature (plain SQL)."""
    con = sqlite3.connect(db_path, timeout=30)
    try:
        with con:
            con.execute("DELETE FROM ledger_cosignatures")
            con.execute("DELETE FROM ledger_checkpoints")
    finally:
        con.close()


def rewrite_entry(app: Faceledger, seq: int, actor: str = "mallory") -> None:
    """Change entry ``seq``'s actor, recompute the chain hash of it and every later entry, set
    the head row, and rebuild the Merkle tree from the rewritten rows: the chain and the tree
    then agree with each other, and only a signed checkpoint can tell."""
    with app.db.write() as s:
        rows = s.execute(select(LedgerEntry).where(LedgerEntry.seq >= seq)
                         .order_by(LedgerEntry.seq)).scalars().all()
        prev_entry = s.get(LedgerEntry, seq - 1)
        prev = prev_entry.hash if prev_entry is not None else ledger.GENESIS
        for e in rows:
            if e.seq == seq:
                e.actor = actor
            e.prev_hash = prev
            e.hash = ledger.entry_hash(e.seq, e.ts, e.kind, e.actor, e.case_ref,
                                       e.payload_digest, prev)
            prev = e.hash
        head = s.get(LedgerHead, 1)
        assert head is not None
        head.hash = prev
        s.flush()
        tree.rebuild(s)
