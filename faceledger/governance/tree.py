"""The ledger's RFC 9162 Merkle tree in SQL (table ``ledger_tree``): every complete aligned
subtree of the entries' leaves, about 2n rows, kept in the same transaction as each append.

Leaf ``i`` is entry ``i + 1``; its data (``ledger.leaf_data``) is the chain preimage's fields
with the actor and case as digests, and the leaf hash ``sha256(0x00 || data)``. A redaction
keeps ``payload_digest``, so leaves survive it. Proofs and heads read every node they
need in one query (``merkle``'s fetch-once design).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, select
from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerEntry, LedgerTree
from faceledger.errors import LedgerIntegrityError
from faceledger.governance import ledger, merkle

Key = merkle.Key
_T = cast(Table, LedgerTree.__table__)
LEAF_FIELDS: tuple[str, ...] = ("seq", "ts", "kind", "actor_digest", "case_digest",
                                 "payload_digest", "prev")  # = ledger.leaf_data's keys


def leaf_fields(entry: LedgerEntry) -> dict[str, Any]:
    """What a stored entry's leaf covers (``ledger.leaf_data``), as a dict: seq, ts, kind,
    actor_digest, case_digest, payload_digest, prev."""
    fields: dict[str, Any] = json.loads(ledger.leaf_data(
        entry.seq, entry.ts, entry.kind, entry.actor, entry.case_ref, entry.payload_digest,
        entry.prev_hash))
    return fields


def leaf_bytes(fields: dict[str, Any]) -> bytes:
    """The leaf data from ``leaf_fields`` (KeyError if one lacks)."""
    return ledger.canonical_json({k: fields[k] for k in LEAF_FIELDS}).encode("utf-8")


def leaf_for(entry: LedgerEntry) -> bytes:
    """The leaf hash of a stored entry (what ``append_leaf`` stored for it)."""
    return merkle.leaf_hash(leaf_bytes(leaf_fields(entry)))


@cache
def _sql(statement: str, paramstyle: str) -> str:
    """``statement`` with ``?`` placeholders in the driver's style (it runs as driver SQL: no
    compile step on the hot path of every append)."""
    return statement.replace("?", "%s") if paramstyle in ("format", "pyformat") else statement


def _select_nodes(n: int) -> str:
    """SELECT of ``n`` nodes by key, as an OR of primary-key lookups (SQLite scans the table
    for a row-value IN)."""
    return ("SELECT level, idx, hash FROM ledger_tree WHERE "
            + " OR ".join(["(level = ? AND idx = ?)"] * n))


_INSERT = "INSERT INTO ledger_tree (level, idx, hash) VALUES (?, ?, ?)"


def _conn(db: Session | Connection) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def _run(conn: Connection, statement: str, params: Any) -> list[Any]:
    """Run on the transaction's own DBAPI connection: the append path's two statements cost
    tens of microseconds this way, a few hundred through the SQL layer."""
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        sql = _sql(statement, conn.dialect.paramstyle)
        if params and isinstance(params, list):
            cur.executemany(sql, params)
            return []
        cur.execute(sql, params)
        return list(cur.fetchall()) if cur.description else []
    finally:
        cur.close()


def fetch_nodes(db: Session | Connection, keys: Sequence[Key]) -> dict[Key, bytes]:
    """The stored hashes of ``keys`` (absent keys are left out), in one query."""
    if not keys:
        return {}
    rows = _run(_conn(db), _select_nodes(len(keys)), tuple(v for k in keys for v in k))
    return {(int(lv), int(ix)): bytes(h) for lv, ix, h in rows}


def _fetcher(session: Session) -> merkle.Fetch:
    def fetch(keys: list[Key]) -> dict[Key, bytes]:
        return fetch_nodes(session, keys)
    return fetch


def _missing(what: str, err: KeyError) -> LedgerIntegrityError:
    return LedgerIntegrityError(
        f"the ledger's Merkle tree lacks nodes for {what} ({err.args[0]}): rebuild it from the "
        "ledger (tree.rebuild) after checking the chain verifies")


def append_leaf(session: Session, index: int, preimage: bytes) -> bytes:
    """Store leaf ``index`` (hash of ``preimage``) and every parent it completes, in the
    caller's transaction; return the leaf hash. Needs leaf ``index - 1`` and the left siblings,
    read in one query."""
    leaf = merkle.leaf_hash(preimage)
    ones = (~index & (index + 1)).bit_length() - 1  # trailing one bits: parents completed
    keys = [(lv, (index >> lv) - 1) for lv in range(ones)]
    if index > 0 and not ones:
        keys.append((0, index - 1))  # the previous leaf: no gap before this one
    got = fetch_nodes(session, [*keys, (0, index)])
    if (0, index) in got:  # the slot is taken: entries past the head were deleted
        raise LedgerIntegrityError(
            f"the ledger's Merkle tree already holds entry {index + 1}, which the ledger does "
            "not: entries were cut from its end and the head rewound (run `faceledger ledger "
            "verify`; restore the database from a backup)")
    lost = [k for k in keys if k not in got]
    if lost:
        raise LedgerIntegrityError(
            f"cannot add entry {index + 1} to the ledger's Merkle tree: nodes {lost} are "
            "missing; rebuild the tree from the ledger (tree.rebuild)")
    rows = [(0, index, leaf)]
    h = leaf
    for lv in range(ones):
        h = merkle.node_hash(got[(lv, (index >> lv) - 1)], h)
        rows.append((lv + 1, index >> (lv + 1), h))
    _run(_conn(session), _INSERT, rows)
    return leaf


def stored_size(session: Session) -> int:
    """How many leaves the tree holds (one past the highest stored leaf)."""
    top = session.execute(select(func.max(_T.c.idx)).where(_T.c.level == 0)).scalar()
    return 0 if top is None else int(top) + 1


def root(session: Session, size: int) -> bytes:
    """The tree head (MTH) of the first ``size`` entries."""
    try:
        return merkle.root(size, _fetcher(session))
    except KeyError as err:
        raise _missing(f"the head of {size} entries", err) from None


def inclusion_proof(session: Session, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` (entry ``index + 1``) in the tree of ``size``."""
    try:
        return merkle.inclusion_proof(index, size, _fetcher(session))
    except KeyError as err:
        raise _missing(f"leaf {index} in a tree of {size}", err) from None


def consistency_proof(session: Session, m: int, n: int) -> list[bytes]:
    """The proof that the tree of ``m`` entries is a prefix of the tree of ``n``."""
    try:
        return merkle.consistency_proof(m, n, _fetcher(session))
    except KeyError as err:
        raise _missing(f"a proof from {m} to {n} entries", err) from None


def frontier(session: Session, size: int) -> merkle.Frontier:
    """The compact range of the first ``size`` leaves, restored from the stored nodes (one
    query), to carry on from a checkpoint."""
    keys = merkle.subtrees(0, size)
    got = fetch_nodes(session, keys)
    if any(k not in got for k in keys):
        raise _missing(f"the frontier of {size} entries", KeyError([k for k in keys
                                                                    if k not in got][:5]))
    return merkle.Frontier.from_nodes(size, [got[k] for k in keys])


def leaves(db: Session | Connection, first: int, last: int) -> dict[int, bytes]:
    """Stored leaf hashes of leaves ``first..last`` (inclusive), by index, in one range query."""
    t = LedgerTree
    rows = db.execute(select(t.idx, t.hash).where(t.level == 0, t.idx >= first, t.idx <= last))
    return {ix: h for ix, h in rows}


def rebuild(db: Session | Connection, batch: int = 10_000) -> int:
    """Recompute the whole tree from the ``ledger`` rows in seq order (migration, repair), in
    batches: memory stays constant. Stops at the first gap in seq (the chain is broken there:
    ``ledger.verify`` names it); returns the number of leaves built. Changes no ledger row."""
    e = LedgerEntry.__table__.c
    cols = (e.seq, e.ts, e.kind, e.actor, e.case_ref, e.payload_digest, e.prev_hash)
    db.execute(delete(_T))
    f = merkle.Frontier()
    while True:
        rows = db.execute(select(*cols).where(e.seq > f.size).order_by(e.seq)
                          .limit(batch)).all()
        nodes: list[tuple[int, int, bytes]] = []
        for r in rows:
            if r.seq != f.size + 1:
                break
            data = ledger.leaf_data(r.seq, r.ts, r.kind, r.actor, r.case_ref,
                                    r.payload_digest, r.prev_hash)
            nodes += f.append(merkle.leaf_hash(data))
        if nodes:
            _run(_conn(db), _INSERT, nodes)
        if len(rows) < batch or f.size != rows[-1].seq:
            return f.size
