"""The ledger's Merkle tree in SQL (faceledger/governance/tree.py), kept by ledger.append in the
same transaction, on a real SQLite data home; and migration 0003 building it for an old home."""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import delete, func, select, update

from faceledger.core import Faceledger
from faceledger.db.engine import MIGRATIONS, head_revision
from faceledger.db.schema import LedgerEntry, LedgerHead, LedgerTree
from faceledger.errors import LedgerIntegrityError
from faceledger.governance import ledger, merkle, tree
from tests.conftest import BOTH_DATABASES, SQLITE_ONLY, World, make_settings

DB_BACKENDS = BOTH_DATABASES  # migration 0003 on PostgreSQL: tests/db/test_postgres.py


def _fill(world: World, n: int) -> None:
    with world.app.db.write() as s:
        for i in range(n):
            ledger.append(s, "test.event", {"i": i}, actor="tester", case_ref=f"C{i % 3}")


def _reference_leaves(world: World) -> list[bytes]:
    """Leaves recomputed from the ledger rows alone (``ledger.leaf_data``)."""
    with world.app.db.read() as s:
        rows = s.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars().all()
        return [merkle.leaf_hash(ledger.leaf_data(e.seq, e.ts, e.kind, e.actor, e.case_ref,
                                                  e.payload_digest, e.prev_hash))
                for e in rows]


def _stored_rows(n: int) -> int:
    """How many nodes the tiled layout stores for ``n`` leaves: every complete aligned subtree
    at level ``TILE`` and up."""
    return sum(n >> lv for lv in range(tree.TILE, max(n.bit_length(), tree.TILE) + 1))


def test_appends_keep_the_tree_root_equal_to_the_reference(world: World) -> None:
    # several transactions, sizes crossing powers of two and tile boundaries
    for batch in (1, 2, 5, 13, 17, 63, 64, 130):
        _fill(world, batch)
        leaves = _reference_leaves(world)
        n = len(leaves)
        with world.app.db.read() as s:
            assert tree.tiled_size(s) == n - n % tree.TILE_SIZE
            assert tree.root(s, n) == merkle.root_from_leaves(leaves)
            assert tree.frontier(s, n).root() == merkle.root_from_leaves(leaves)
            rows = s.execute(select(func.count()).select_from(LedgerTree)).scalar_one()
            assert rows == _stored_rows(n)  # only the tiles and the nodes above them
            low = s.execute(select(func.count()).select_from(LedgerTree)
                            .where(LedgerTree.level < tree.TILE)).scalar_one()
            assert low == 0
            for m in (1, n // 2, n - 1):
                assert tree.root(s, m) == merkle.root_from_leaves(leaves[:m])


def test_leaf_fields_hide_actor_and_case_but_bind_them(world: World) -> None:
    _fill(world, 3)
    with world.app.db.read() as s:
        for e in s.execute(select(LedgerEntry)).scalars():
            fields = tree.leaf_fields(e)
            assert set(fields) == set(tree.LEAF_FIELDS)
            assert "actor" not in fields and "case" not in fields
            assert fields["actor_digest"] == ledger.sha256_hex(ledger.canonical_json(e.actor))
            assert fields["case_digest"] == ledger.sha256_hex(ledger.canonical_json(e.case_ref))
            assert (fields["seq"], fields["prev"], fields["payload_digest"]) == (
                e.seq, e.prev_hash, e.payload_digest)
            assert tree.leaf_for(e) == merkle.leaf_hash(tree.leaf_bytes(fields))
            other = dict(fields, actor_digest=ledger.sha256_hex(ledger.canonical_json("mallory")))
            assert merkle.leaf_hash(tree.leaf_bytes(other)) != tree.leaf_for(e)


def test_proofs_from_sql_verify(world: World) -> None:
    _fill(world, 150)  # two stored tiles and an open one
    leaves = _reference_leaves(world)
    n = len(leaves)
    roots = [merkle.root_from_leaves(leaves[:m]) for m in range(n + 1)]
    with world.app.db.read() as s:
        for size in (1, 7, 16, tree.TILE_SIZE, tree.TILE_SIZE + 1, 2 * tree.TILE_SIZE, n):
            for i in range(size):
                path = tree.inclusion_proof(s, i, size)
                assert merkle.verify_inclusion(leaves[i], i, size, path, roots[size])
                assert not merkle.verify_inclusion(leaves[i], i, size, path, roots[size - 1])
        for m in range(n + 1):
            for size in (m, (m + n) // 2, n):
                proof = tree.consistency_proof(s, m, size)
                assert merkle.verify_consistency(m, size, roots[m], roots[size], proof), (m, size)


def test_a_rolled_back_append_leaves_no_node(world: World) -> None:
    n = len(_reference_leaves(world))
    _fill(world, tree.TILE_SIZE - 1 - n % tree.TILE_SIZE)  # the next append completes a tile
    with world.app.db.read() as s:
        before = tree.tiled_size(s)
        rows = s.execute(select(func.count()).select_from(LedgerTree)).scalar_one()
    with pytest.raises(RuntimeError), world.app.db.write() as s:
        ledger.append(s, "test.event", {"x": 1})
        assert tree.tiled_size(s) == before + tree.TILE_SIZE  # stored, inside the transaction
        raise RuntimeError("the action failed")
    with world.app.db.read() as s:
        assert tree.tiled_size(s) == before
        assert s.execute(select(func.count()).select_from(LedgerTree)).scalar_one() == rows
    _fill(world, 1)  # and the next append stores the tile
    with world.app.db.read() as s:
        assert tree.tiled_size(s) == before + tree.TILE_SIZE
    assert _verify(world).ok


def _verify(world: World) -> ledger.VerifyReport:
    with world.app.db.read() as s:
        return ledger.verify(s)


def test_a_missing_node_is_a_clear_error(world: World) -> None:
    _fill(world, 3 * tree.TILE_SIZE)
    n = len(_reference_leaves(world))
    assert n < 4 * tree.TILE_SIZE
    with world.app.db.write() as s:  # the root of the first two tiles
        s.execute(delete(LedgerTree).where(LedgerTree.level == tree.TILE + 1,
                                           LedgerTree.idx == 0))
    with world.app.db.read() as s, pytest.raises(LedgerIntegrityError, match="lacks nodes"):
        tree.root(s, n)
    # completing tile 3 needs tile 2 and that lost node: the append says so
    with pytest.raises(LedgerIntegrityError, match="cannot add entry"), world.app.db.write() as s:
        for _ in range(4 * tree.TILE_SIZE - n):
            ledger.append(s, "test.event", {"x": 1})
    assert len(_reference_leaves(world)) == n  # nothing was written


def test_a_missing_entry_is_a_clear_error_for_proofs(world: World) -> None:
    _fill(world, 20)
    n = len(_reference_leaves(world))
    with world.app.db.write() as s:  # leaves are recomputed from the entries: leaf 1 is gone
        s.execute(delete(LedgerEntry).where(LedgerEntry.seq == 2))
    with world.app.db.read() as s, pytest.raises(LedgerIntegrityError, match="lacks nodes"):
        tree.inclusion_proof(s, 0, n)  # leaf 0's path starts with leaf 1
    with world.app.db.read() as s, pytest.raises(LedgerIntegrityError, match="lacks nodes"):
        tree.root(s, n)


def test_verify_names_an_altered_or_missing_tile(world: World) -> None:
    _fill(world, 2 * tree.TILE_SIZE)
    assert _verify(world).ok
    with world.app.db.write() as s:
        s.execute(update(LedgerTree).where(LedgerTree.level == tree.TILE, LedgerTree.idx == 1)
                  .values(hash=b"\x00" * 32))
    report = _verify(world)
    first, last = tree.TILE_SIZE + 1, 2 * tree.TILE_SIZE
    assert not report.ok and report.first_bad_seq == first
    assert report.reason == f"entries {first}-{last}: their Merkle tile does not match the entries"
    with world.app.db.write() as s:
        s.execute(delete(LedgerTree).where(LedgerTree.level == tree.TILE, LedgerTree.idx == 0))
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == 1  # now the first tile is the first bad one
    assert report.reason == (f"entries 1-{tree.TILE_SIZE}: their Merkle tile is missing from "
                             "the tree")
    with world.app.db.write() as s:
        n = s.get(LedgerHead, 1).seq  # type: ignore[union-attr]
        assert tree.rebuild(s, batch=3) == n
    assert _verify(world).ok
    with world.app.db.read() as s:  # an incremental walk from inside a tile checks the tiles
        after = tree.TILE_SIZE // 2  # it walks whole, and only those
        prev = s.get(LedgerEntry, after)
        assert prev is not None
        assert ledger.verify(s, after_seq=after, after_hash=prev.hash).ok


def test_rebuild_reproduces_the_appended_tree_and_redaction_keeps_leaves(world: World) -> None:
    _fill(world, 2 * tree.TILE_SIZE + 12)
    with world.app.db.write() as s:
        seq = ledger.append(s, "test.event", {"secret": "x", "kept": 1}).seq
    with world.app.db.write() as s:
        ledger.redact(s, seq, ["secret"], "test", actor="tester")
    assert _verify(world).ok
    n = len(_reference_leaves(world))
    with world.app.db.read() as s:
        before = dict(((lv, ix), h) for lv, ix, h in s.execute(
            select(LedgerTree.level, LedgerTree.idx, LedgerTree.hash)))
    with world.app.db.write() as s:
        assert tree.rebuild(s, batch=4) == n
    with world.app.db.read() as s:
        after = dict(((lv, ix), h) for lv, ix, h in s.execute(
            select(LedgerTree.level, LedgerTree.idx, LedgerTree.hash)))
    assert after == before
    assert tree.root(s, n) == merkle.root_from_leaves(_reference_leaves(world))


def _downgrade(app: Faceledger, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with app.db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _ledger_rows(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    return db.execute("SELECT * FROM ledger ORDER BY seq").fetchall()


@SQLITE_ONLY
def test_migration_0003_builds_the_tree_for_an_existing_home(world: World) -> None:
    _fill(world, tree.TILE_SIZE + 37)
    home = world.app.settings.home
    _downgrade(world.app, "0002")  # as a data home made before the tree
    world.app.close()
    db = sqlite3.connect(home / "faceledger.db")
    assert ("ledger_tree",) not in db.execute("SELECT name FROM sqlite_master").fetchall()
    rows_before = _ledger_rows(db)
    db.close()
    leaves = [merkle.leaf_hash(ledger.leaf_data(*r[:5], r[6], r[7])) for r in rows_before]
    assert len(leaves) >= tree.TILE_SIZE + 37
    again = Faceledger(make_settings(home))
    try:
        again.db.require_initialised()
        assert again.db.schema_revision() == head_revision()
        with again.db.read() as s:
            assert tree.tiled_size(s) == len(leaves) - len(leaves) % tree.TILE_SIZE
            assert tree.root(s, len(leaves)) == merkle.root_from_leaves(leaves)
            assert ledger.verify(s).ok
        db = sqlite3.connect(home / "faceledger.db")
        assert _ledger_rows(db) == rows_before  # byte-identical: no ledger row changed
        db.close()
    finally:
        again.close()


@SQLITE_ONLY
def test_migration_0006_keeps_only_the_tiles_and_downgrades_to_every_node(world: World) -> None:
    _fill(world, 2 * tree.TILE_SIZE + 9)
    leaves = _reference_leaves(world)
    n = len(leaves)
    _downgrade(world.app, "0005")  # the layout before tiles: every complete aligned subtree
    with world.app.db.read() as s:
        rows = s.execute(select(func.count()).select_from(LedgerTree)).scalar_one()
        assert rows == 2 * n - n.bit_count()
        first = s.execute(select(LedgerTree.hash).where(LedgerTree.level == 0,
                                                         LedgerTree.idx == 0)).scalar_one()
        assert first == leaves[0]
    home = world.app.settings.home
    world.app.close()
    db = sqlite3.connect(home / "faceledger.db")
    rows_before = _ledger_rows(db)
    db.close()
    again = Faceledger(make_settings(home))
    try:
        again.db.require_initialised()
        assert again.db.schema_revision() == head_revision()
        with again.db.read() as s:
            rows = s.execute(select(func.count()).select_from(LedgerTree)).scalar_one()
            assert rows == _stored_rows(n)
            assert tree.root(s, n) == merkle.root_from_leaves(leaves)
            assert ledger.verify(s).ok
        db = sqlite3.connect(home / "faceledger.db")
        assert _ledger_rows(db) == rows_before
        db.close()
    finally:
        again.close()
