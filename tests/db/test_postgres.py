"""faceledger on PostgreSQL (issue 15, part 1): the migrations, the writers' lock, and the ledger
kept as one unbroken chain and Merkle log while several processes append at once (on SQLite
too), and the quota check holding under concurrent searches."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from faceledger.db.engine import MIGRATIONS, Database, head_revision
from faceledger.db.schema import LedgerEntry, LedgerHead
from faceledger.governance import ledger, merkle, tree
from faceledger.search.match import resolve_collections
from tests import pg
from tests.conftest import BOTH_DATABASES, World
from tests.db.ledger_writer import KIND, append_entries
from tests.db.two_writers import two_writers
from tests.photos import astronaut_face, encode
from tests.search.quota_worker import run_many, slow_detector
from tests.search.test_quota_race import RULE, ledgered, set_quota

ROOT = Path(__file__).resolve().parents[2]
ON_POSTGRES = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
WRITERS, EACH = 4, 200


def _reference_root(db: Database) -> tuple[int, bytes]:
    """(entries, the Merkle root recomputed from the ledger rows alone)."""
    with db.read() as s:
        rows = s.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars().all()
        leaves = [merkle.leaf_hash(ledger.leaf_data(e.seq, e.ts, e.kind, e.actor, e.case_ref,
                                                    e.payload_digest, e.prev_hash)) for e in rows]
    return len(leaves), merkle.root_from_leaves(leaves)


@pytest.fixture(params=BOTH_DATABASES)
def ledger_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a migrated database with an empty ledger, on SQLite or PostgreSQL."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    db = Database(url)
    try:
        db.migrate()
        with db.write() as s:
            ledger.initialise(s)
    finally:
        db.dispose()
    yield url


def test_concurrent_writer_processes_keep_one_chain_and_one_tree(ledger_db: str) -> None:
    """4 processes x 200 appends at once: seq 1..800 with no gap or duplicate, every entry
    there once, the chain verifies and the Merkle tree's root equals the one recomputed."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=append_entries, args=(ledger_db, w, EACH, barrier))
             for w in range(WRITERS)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    elapsed = time.perf_counter() - started
    assert [p.exitcode for p in procs] == [0] * WRITERS
    db = Database(ledger_db)
    try:
        with db.read() as s:
            entries = s.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars().all()
            head = s.get(LedgerHead, 1)
            report = ledger.verify(s)
            stored = head.seq if head is not None else 0
            tiled = tree.tiled_size(s)
            root = tree.root(s, stored)
        total = WRITERS * EACH
        assert [e.seq for e in entries] == list(range(1, total + 1))
        written = Counter((p["worker"], p["i"]) for e in entries if e.kind == KIND
                          for p in [ledger.entry_dict(e)["payload"]])
        assert written == Counter(itertools.product(range(WRITERS), range(EACH)))
        assert head is not None and (head.seq, head.hash) == (total, entries[-1].hash)
        assert report.ok, report.reason
        assert (stored, root) == _reference_root(db)
        assert tiled == stored - stored % tree.TILE_SIZE  # every complete tile is stored
        print(f"{total} appends from {WRITERS} processes on {ledger_db.split(':')[0]}: "
              f"{elapsed:.1f} s with process start ({total / elapsed:.0f}/s)")
    finally:
        db.dispose()


@ON_POSTGRES
def test_write_transactions_wait_for_each_other_reads_do_not(world: World) -> None:
    """A write transaction on PostgreSQL starts only when the one before it has committed, as
    BEGIN IMMEDIATE does on SQLite; a read goes ahead meanwhile."""
    db = world.app.db
    assert db.is_postgres

    def select_one(s: Session) -> None:
        s.execute(text("SELECT 1"))

    during, order = two_writers(db, select_one, select_one, "second began")
    assert during == []  # the second writer is still waiting
    assert order == ["first committed", "second began"]


def _downgrade(url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        db.dispose()


@ON_POSTGRES
def test_migrations_run_on_postgresql_and_0003_builds_the_tree(world: World) -> None:
    """Down to 0002 (before the Merkle tree) and up again on PostgreSQL: 0003 builds the tree
    over the existing entries through psycopg's paramstyle, changing no ledger row."""
    url = world.app.settings.database_url
    assert url is not None and url.startswith("postgresql+psycopg://")
    with world.app.db.write() as s:
        for i in range(37):
            ledger.append(s, "test.event", {"i": i}, actor="tester", case_ref=f"C{i % 3}")
    world.app.db.dispose()
    _downgrade(url, "0002")
    db = Database(url)
    try:
        assert "ledger_tree" not in inspect(db.engine).get_table_names()
        with db.read() as s:
            before = [ledger.entry_dict(e) for e in
                      s.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars()]
        db.require_initialised()  # brings the schema up to head
        assert db.schema_revision() == head_revision()
        with db.read() as s:
            after = [ledger.entry_dict(e) for e in
                     s.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars()]
            head_row = s.get(LedgerHead, 1)
            size = head_row.seq if head_row is not None else 0
            assert tree.tiled_size(s) == size - size % tree.TILE_SIZE
            assert ledger.verify(s).ok
        assert after == before and len(before) >= 37
        with db.read() as s:
            assert (size, tree.root(s, size)) == _reference_root(db)
    finally:
        db.dispose()


@ON_POSTGRES
def test_quota_holds_across_threads_on_postgresql(world: World) -> None:
    set_quota(world, 2)
    slow_detector(world.app)
    outcomes = run_many(world.app, world.investigator_token, encode(astronaut_face()), 6,
                        time.time() + 0.5, "thread")
    assert Counter(outcomes) == {"ok": 2, RULE: 4}
    assert ledgered(world) == (2, 2, Counter({RULE: 4}))


@ON_POSTGRES
def test_quota_holds_across_two_processes_on_postgresql(world: World, tmp_path: Path) -> None:
    """Two processes (as two API workers would be) search one PostgreSQL database at once."""
    set_quota(world, 3)
    slow_detector(world.app)
    resolve_collections(world.app, world.app.model_id, None)  # index files first (as test_quota_race)
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(encode(astronaut_face()))
    start_at = time.time() + 8  # time for the other process to load its models
    env = {**os.environ, "FACELEDGER_DATABASE_URL": str(world.app.settings.database_url)}
    other = subprocess.Popen(
        [sys.executable, "-m", "tests.search.quota_worker", str(world.app.settings.home),
         world.investigator_token, "4", str(start_at), str(probe)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mine = run_many(world.app, world.investigator_token, probe.read_bytes(), 4, start_at, "main")
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    theirs = json.loads(out.strip().splitlines()[-1])
    assert Counter(mine + theirs) == {"ok": 3, RULE: 5}
    assert ledgered(world) == (3, 3, Counter({RULE: 5}))
    assert not (world.app.settings.home / "faceledger.db").exists()  # all of it on PostgreSQL


def test_the_test_server_is_postgresql_15_or_newer(pg_server: pg.PgServer) -> None:
    db = Database(pg_server.url)
    try:
        with db.engine.connect() as conn:
            version = int(conn.execute(text("SHOW server_version_num")).scalar_one())
        assert version >= 150000
    finally:
        db.dispose()
