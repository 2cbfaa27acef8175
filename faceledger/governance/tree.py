"""The ledger's RFC 9162 Merkle tree in SQL (table ``ledger_tree``), in tiles: the nodes at
level ``TILE`` and above are stored, each once its ``2**TILE`` leaves exist, in the transaction
of the append that completes it; the nodes below (inside a tile, and the newest, still open
tile) are recomputed from the entries when a proof or head needs them. Most appends therefore
write nothing to the tree (a commit's cost is its pages: storing every leaf made one-append
transactions about 16-21% slower), and a proof reads at most two tiles' entries.

Leaf ``i`` is entry ``i + 1``; its data (``ledger.leaf_data``) is the chain preimage's fields
with the actor and case as digests, and the leaf hash ``sha256(0x00 || data)``. A redaction
keeps ``payload_digest``, so leaves survive it. Proofs and heads gather every node they need
first, then read the stored ones in one query (``merkle``'s fetch-once design).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, select
from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerEntry, LedgerTree
from faceledger.errors import LedgerIntegrityError
from faceledger.governance import ledger, merkle

Key = merkle.Key
TILE = 6  # stored levels start here: a tile is 2**TILE = 64 leaves
TILE_SIZE = 1 << TILE
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
    """The leaf hash of a stored entry."""
    return merkle.leaf_hash(leaf_bytes(leaf_fields(entry)))


def tile_hash(leaves: Sequence[bytes]) -> bytes:
    """The root of one complete tile from its ``TILE_SIZE`` leaf hashes."""
    if len(leaves) != TILE_SIZE:
        raise ValueError(f"a tile has {TILE_SIZE} leaves, not {len(leaves)}")
    return _levels(list(leaves))[-1][0]


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every complete aligned subtree over ``leaves`` (which start at a tile's first leaf),
    level by level: ``out[lv][j]`` is node ``lv`` number ``j`` inside the tile."""
    out = [leaves]
    while len(out[-1]) > 1:
        row = out[-1]
        out.append([merkle.node_hash(row[j], row[j + 1]) for j in range(0, len(row) - 1, 2)])
    return out


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
_HELD = f"SELECT 1 FROM ledger_tree WHERE level = {TILE} AND idx = ?"
_ENTRIES = ("SELECT seq, ts, kind, actor, case_ref, payload_digest, prev_hash FROM ledger "
            "WHERE seq >= ? AND seq <= ? ORDER BY seq")


def _conn(db: Session | Connection) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def _run(conn: Connection, statement: str, params: Any) -> list[Any]:
    """Run on the transaction's own DBAPI connection: the append path's statements cost tens
    of microseconds this way, a few hundred through the SQL layer."""
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


def _tile_leaves(conn: Connection, tile: int, upto: int) -> list[bytes]:
    """Leaf hashes of tile ``tile``'s entries up to leaf ``upto`` (exclusive), recomputed from
    the ledger rows; stops at the first missing entry."""
    first = tile << TILE
    if upto <= first:
        return []
    out: list[bytes] = []
    for row in _run(conn, _ENTRIES, (first + 1, upto)):
        if int(row[0]) != first + len(out) + 1:
            break
        out.append(_leaf_hash(tuple(row)))
    return out


@lru_cache(maxsize=4 * TILE_SIZE)
def _leaf_hash(row: tuple[Any, ...]) -> bytes:
    """The leaf hash of an entry from its stored columns (``_ENTRIES``' order). Memoised on the
    columns themselves, so a cached hash is always that of the row as read (no invalidation:
    a changed or rolled-back row is a different key); each search's receipt re-reads its open
    tile, whose older leaves are then not hashed again."""
    return merkle.leaf_hash(ledger.leaf_data(int(row[0]), *row[1:]))


def _stored(conn: Connection, keys: Sequence[Key]) -> dict[Key, bytes]:
    if not keys:
        return {}
    rows = _run(conn, _select_nodes(len(keys)), tuple(v for k in keys for v in k))
    return {(int(lv), int(ix)): bytes(h) for lv, ix, h in rows}


def fetch_nodes(db: Session | Connection, keys: Sequence[Key]) -> dict[Key, bytes]:
    """The hashes of ``keys`` (absent keys are left out): nodes at level ``TILE`` and up from
    the table in one query, those below from their tile's entries (read once per tile)."""
    conn = _conn(db)
    got = _stored(conn, [k for k in keys if k[0] >= TILE])
    low: dict[int, list[Key]] = {}
    for lv, ix in keys:
        if lv < TILE:
            low.setdefault((ix << lv) >> TILE, []).append((lv, ix))
    for tile, wanted in low.items():
        upto = max((ix + 1) << lv for lv, ix in wanted)
        levels = _levels(_tile_leaves(conn, tile, upto))
        for lv, ix in wanted:
            j = ix - (tile << (TILE - lv))
            if lv < len(levels) and j < len(levels[lv]):
                got[(lv, ix)] = levels[lv][j]
    return got


def _fetcher(session: Session) -> merkle.Fetch:
    def fetch(keys: list[Key]) -> dict[Key, bytes]:
        return fetch_nodes(session, keys)
    return fetch


def _missing(what: str, err: KeyError) -> LedgerIntegrityError:
    return LedgerIntegrityError(
        f"the ledger's Merkle tree lacks nodes for {what} ({err.args[0]}): check the chain "
        "(`faceledger ledger verify`), then rebuild the tree from the ledger (tree.rebuild)")


def _cut(index: int) -> LedgerIntegrityError:
    return LedgerIntegrityError(
        f"the ledger's Merkle tree already holds entry {index + 1}, which the ledger does "
        "not: entries were cut from its end and the head rewound (run `faceledger ledger "
        "verify`; restore the database from a backup)")


def append_leaf(session: Session, index: int, preimage: bytes) -> bytes:
    """Add leaf ``index`` (hash of ``preimage``, the data of the entry being appended, which
    is not written yet) in the caller's transaction; return the leaf hash. When it completes a
    tile, store the tile's root and every parent that completes, reading the tile's other
    entries (flushed earlier in this transaction or committed). Refuses when the tree already
    covers ``index``: entries past the head were deleted."""
    leaf = merkle.leaf_hash(preimage)
    tile = index >> TILE
    conn = _conn(session)
    if (index + 1) % TILE_SIZE:
        if _run(conn, _HELD, (tile,)):
            raise _cut(index)
        return leaf
    leaves = _tile_leaves(conn, tile, index)
    if len(leaves) != TILE_SIZE - 1:
        raise LedgerIntegrityError(
            f"cannot add entry {index + 1} to the ledger's Merkle tree: entry "
            f"{(tile << TILE) + len(leaves) + 1} is missing (run `faceledger ledger verify`)")
    ones = (~tile & (tile + 1)).bit_length() - 1  # trailing one bits: parents completed
    keys = [(TILE + lv, (tile >> lv) - 1) for lv in range(ones)]
    got = _stored(conn, [*keys, (TILE, tile)])
    if (TILE, tile) in got:
        raise _cut(index)
    lost = [k for k in keys if k not in got]
    if lost:
        raise LedgerIntegrityError(
            f"cannot add entry {index + 1} to the ledger's Merkle tree: nodes {lost} are "
            "missing; rebuild the tree from the ledger (tree.rebuild)")
    h = tile_hash([*leaves, leaf])
    rows = [(TILE, tile, h)]
    for lv in range(ones):
        h = merkle.node_hash(got[(TILE + lv, (tile >> lv) - 1)], h)
        rows.append((TILE + lv + 1, tile >> (lv + 1), h))
    _run(conn, _INSERT, rows)
    return leaf


def tiled_size(db: Session | Connection) -> int:
    """How many leaves the stored tiles cover (a multiple of ``TILE_SIZE``): the ledger must
    hold at least that many entries."""
    top = db.execute(select(func.max(_T.c.idx)).where(_T.c.level == TILE)).scalar()
    return 0 if top is None else (int(top) + 1) << TILE


def tiles(db: Session | Connection, first: int, last: int) -> dict[int, bytes]:
    """Stored roots of tiles ``first..last`` (inclusive), by tile number, in one range query."""
    t = LedgerTree
    rows = db.execute(select(t.idx, t.hash).where(t.level == TILE, t.idx >= first,
                                                  t.idx <= last))
    return {ix: h for ix, h in rows}


def root(session: Session, size: int) -> bytes:
    """The tree head (MTH) of the first ``size`` entries."""
    try:
        return merkle.root(size, _fetcher(session))
    except KeyError as err:
        raise _missing(f"the head of {size} entries", err) from None


def inclusion_proof(session: Session, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` (entry ``index + 1``) in the tree of ``size``."""
    return root_and_inclusion(session, index, size)[1]


def root_and_inclusion(session: Session, index: int, size: int) -> tuple[bytes, list[bytes]]:
    """The head of ``size`` entries and leaf ``index``'s audit path in it, from one read of the
    nodes they share (the open tile's entries are read once, not once each)."""
    held: dict[Key, bytes] = {}
    fetch = _fetcher(session)

    def shared(keys: list[Key]) -> dict[Key, bytes]:
        held.update(fetch([k for k in keys if k not in held]))
        return {k: held[k] for k in keys if k in held}

    try:
        head = merkle.root(size, shared)
    except KeyError as err:
        raise _missing(f"the head of {size} entries", err) from None
    try:
        return head, merkle.inclusion_proof(index, size, shared)
    except KeyError as err:
        raise _missing(f"leaf {index} in a tree of {size}", err) from None


def consistency_proof(session: Session, m: int, n: int) -> list[bytes]:
    """The proof that the tree of ``m`` entries is a prefix of the tree of ``n``."""
    try:
        return merkle.consistency_proof(m, n, _fetcher(session))
    except KeyError as err:
        raise _missing(f"a proof from {m} to {n} entries", err) from None


def frontier(session: Session, size: int) -> merkle.Frontier:
    """The compact range of the first ``size`` leaves (to carry on from a checkpoint)."""
    keys = merkle.subtrees(0, size)
    got = fetch_nodes(session, keys)
    if any(k not in got for k in keys):
        raise _missing(f"the frontier of {size} entries", KeyError([k for k in keys
                                                                    if k not in got][:5]))
    return merkle.Frontier.from_nodes(size, [got[k] for k in keys])


def stored_nodes(nodes: Iterable[tuple[int, int, bytes]], min_level: int = TILE
                 ) -> list[tuple[int, int, bytes]]:
    """The nodes (from ``Frontier.append``) this layout stores."""
    return [n for n in nodes if n[0] >= min_level]


def rebuild(db: Session | Connection, batch: int = 10_000, *, min_level: int = TILE) -> int:
    """Recompute the stored tree from the ``ledger`` rows in seq order (migration, repair), in
    batches: memory stays constant. Stops at the first gap in seq (the chain is broken there:
    ``ledger.verify`` names it); returns the number of leaves folded. Changes no ledger row.
    ``min_level`` 0 stores every node (the layout before migration 0006)."""
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
            nodes += stored_nodes(f.append(merkle.leaf_hash(data)), min_level)
        if nodes:
            _run(_conn(db), _INSERT, nodes)
        if len(rows) < batch or f.size != rows[-1].seq:
            return f.size
