"""The ledger's Merkle tree: append cost, proof and head times at scale, full vs incremental
verify, and pymerkle side by side (never run by the tests).

    .venv/bin/python bench/ledger_bench.py --out bench/results [--max-entries 10000000]
        [--verify-entries 1000000] [--appends 2000] [--rounds 5] [--no-pymerkle]

(a) appends/s through ``ledger.append`` on a real SQLite file (the app's engine: WAL, BEGIN
    IMMEDIATE), one transaction per append and 1000 per transaction, with the Merkle tree and
    without (``tree.append_leaf`` replaced by a no-op), two files, alternating rounds.
(b) tree head, inclusion and consistency proof times (p50/p99 over 1000 random queries) and
    proof sizes at 10^6 .. ``--max-entries`` leaves: real chain rows and the tiled tree by
    ``tree.rebuild`` (the nodes below a tile are recomputed from the entries per proof).
(c) ``ledger.verify`` over ``--verify-entries`` real entries (chain rows made with the ledger's
    own functions, tree by ``tree.rebuild``) vs incremental: the last 1000 entries after a
    checkpoint, with a Frontier restored from the tree.
(d) pymerkle (PyPI; bench only, not a dependency): append and proof times, SQLite and in-memory.
Writes ``ledger.json`` into ``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from faceledger.db.engine import Database
from faceledger.db.schema import LedgerEntry, LedgerTree
from faceledger.governance import ledger, merkle, tree


def _db(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    db.migrate()
    with db.write() as s:
        ledger.initialise(s)
    return db


def _pcts(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"p50_ms": round(1000 * xs[len(xs) // 2], 4),
            "p99_ms": round(1000 * xs[min(len(xs) - 1, int(len(xs) * 0.99))], 4)}


def _append_round(db: Database, n: int, per_txn: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, n, per_txn):
        with db.write() as s:
            for i in range(start, min(n, start + per_txn)):
                ledger.append(s, "bench.event", {"i": i, "note": "x" * 40}, actor="bench",
                              case_ref="B-1")
    return n / (time.perf_counter() - t0)


def bench_appends(tmp: Path, n: int, rounds: int) -> list[dict[str, Any]]:
    real = tree.append_leaf

    def noop(session: Any, index: int, preimage: bytes) -> bytes:
        return b""

    with_db, without_db = _db(tmp / "with.db"), _db(tmp / "without.db")
    out = []
    for label, per_txn, count in (("1 per transaction", 1, n), ("1000 per transaction", 1000,
                                                                 n * 10)):
        rates: dict[str, list[float]] = {"with": [], "without": []}
        for r in range(rounds):
            for which in (("with", "without") if r % 2 == 0 else ("without", "with")):
                tree.append_leaf = real if which == "with" else noop  # type: ignore[assignment]
                rates[which].append(_append_round(with_db if which == "with" else without_db,
                                                  count, per_txn))
        tree.append_leaf = real  # type: ignore[assignment]
        w, wo = statistics.median(rates["with"]), statistics.median(rates["without"])
        out.append({"mode": label, "appends": count, "rounds": rounds,
                    "with_tree_per_s": round(w), "without_tree_per_s": round(wo),
                    "slowdown_pct": round(100 * (wo / w - 1), 1)})
        print(out[-1], flush=True)
    with with_db.read() as s:  # the tree the timed appends built is the right one
        assert ledger.verify(s).ok  # every tile the timed appends stored matches its entries
    with_db.dispose()
    without_db.dispose()
    return out


def _timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_proofs(tmp: Path, n: int, queries: int = 1000) -> dict[str, Any]:
    path = tmp / f"tree-{n}.db"
    db = _db(path)
    t0 = time.perf_counter()
    _real_entries(db, path, n)  # the tiles' lower levels are recomputed from real entries
    build_s = time.perf_counter() - t0
    rng = random.Random(n)
    wal = path.with_name(path.name + "-wal")
    res: dict[str, Any] = {"entries": n, "build_s": round(build_s, 1), "db_bytes":
                           path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)}
    with db.read() as s:
        assert tree.tiled_size(s) == n - n % tree.TILE_SIZE
        res["tree_rows"] = s.execute(select(func.count()).select_from(LedgerTree)).scalar_one()
        res["root"] = _pcts(_timed(lambda: tree.root(s, n), 200))
        idx = [rng.randrange(n) for _ in range(queries)]
        inc = []
        root = tree.root(s, n)
        for i in idx:
            t1 = time.perf_counter()
            p = tree.inclusion_proof(s, i, n)
            inc.append(time.perf_counter() - t1)
            entry = s.get(LedgerEntry, i + 1)
            assert entry is not None
            assert merkle.verify_inclusion(tree.leaf_for(entry), i, n, p, root)
        res["inclusion"] = {**_pcts(inc), "bytes": 32 * len(p)}
        con, sizes = [], []
        for _ in range(queries):
            m = rng.randrange(1, n)
            t1 = time.perf_counter()
            p = tree.consistency_proof(s, m, n)
            con.append(time.perf_counter() - t1)
            sizes.append(32 * len(p))
        res["consistency"] = {**_pcts(con), "bytes_mean": round(statistics.mean(sizes)),
                              "bytes_max": max(sizes)}
    db.dispose()
    path.unlink()
    print(res, flush=True)
    return res


def _real_entries(db: Database, path: Path, n: int) -> None:
    """n valid chain rows, made with the ledger's own functions, and the tree by rebuild."""
    raw = sqlite3.connect(path)
    prev, rows = ledger.GENESIS, []
    for seq in range(1, n + 1):
        payload = {"i": seq, "note": "x" * 40}
        ts = f"2026-01-01T00:00:00.{seq % 1_000_000:06d}+00:00"
        digest = ledger.payload_digest(payload)
        h = ledger.entry_hash(seq, ts, "bench.event", "bench", "B-1", digest, prev)
        rows.append((seq, ts, "bench.event", "bench", "B-1", ledger.canonical_json(payload),
                     digest, prev, h))
        prev = h
        if len(rows) == 50_000 or seq == n:
            raw.executemany("INSERT INTO ledger (seq, ts, kind, actor, case_ref, payload, "
                            "payload_digest, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)", rows)
            rows = []
    raw.execute("UPDATE ledger_head SET seq = ?, hash = ? WHERE id = 1", (n, prev))
    raw.commit()
    raw.close()
    with db.write() as s:
        assert tree.rebuild(s, batch=20_000) == n


def bench_verify(tmp: Path, n: int, tail: int = 1000) -> dict[str, Any]:
    path = tmp / "verify.db"
    db = _db(path)
    t0 = time.perf_counter()
    _real_entries(db, path, n)
    setup_s = time.perf_counter() - t0
    with db.read() as s:
        t0 = time.perf_counter()
        full = ledger.verify(s)
        full_s = time.perf_counter() - t0
        assert full.ok, full.reason
        t0 = time.perf_counter()
        cp = n - tail  # a checkpoint at n - tail: its entry's hash and the tree's frontier
        cp_hash = s.execute(select(LedgerEntry.hash)
                            .where(LedgerEntry.seq == cp)).scalar_one()
        front = tree.frontier(s, cp)
        inc = ledger.verify(s, after_seq=cp, after_hash=cp_hash)
        for e in ledger.read(s, after_seq=cp, limit=tail):
            front.append(tree.leaf_for(e))
        ok = inc.ok and front.root() == tree.root(s, n)
        inc_s = time.perf_counter() - t0
    db.dispose()
    path.unlink()
    res = {"entries": n, "setup_s": round(setup_s, 1), "full_verify_s": round(full_s, 2),
           "incremental_entries": tail, "incremental_s": round(inc_s, 4), "incremental_ok": ok,
           "speedup": round(full_s / inc_s)}
    print(res, flush=True)
    return res


def bench_pymerkle(tmp: Path, n: int, queries: int = 1000) -> list[dict[str, Any]]:
    try:
        from pymerkle import InmemoryTree, SqliteTree
    except ImportError:
        return []
    out = []
    data = [f"entry {i}".encode() for i in range(n)]
    for name, make in (("pymerkle InmemoryTree", lambda: InmemoryTree(algorithm="sha256")),
                       ("pymerkle SqliteTree", lambda: SqliteTree(str(tmp / "pym.db"),
                                                                  algorithm="sha256"))):
        t = make()
        t0 = time.perf_counter()
        if isinstance(t, SqliteTree):
            t.append_entries(data, chunksize=100_000)
        else:
            for d in data:
                t.append_entry(d)
        app_s = time.perf_counter() - t0
        rng = random.Random(1)
        inc = _timed(lambda t=t, rng=rng: t.prove_inclusion(rng.randrange(1, n + 1), n), queries)
        con = _timed(lambda t=t, rng=rng: t.prove_consistency(rng.randrange(1, n), n), queries)
        root = _timed(lambda t=t: t.get_root(n), 20)
        assert t.get_root(n) == merkle.root_from_leaves([merkle.leaf_hash(d) for d in data])
        out.append({"system": name, "entries": n, "append_per_s": round(n / app_s),
                    "root": _pcts(root), "inclusion": _pcts(inc), "consistency": _pcts(con)})
        print(out[-1], flush=True)
        if isinstance(t, SqliteTree):
            t.close()
    # ours, in memory, the same way: Frontier appends (nodes kept in a dict) and proofs
    nodes: dict[tuple[int, int], bytes] = {}
    f = merkle.Frontier()
    t0 = time.perf_counter()
    for d in data:
        nodes.update({(lv, ix): h for lv, ix, h in f.append(merkle.leaf_hash(d))})
    app_s = time.perf_counter() - t0

    def fetch(keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {k: nodes[k] for k in keys}

    rng = random.Random(1)
    out.append({"system": "faceledger merkle (in memory)", "entries": n,
                "append_per_s": round(n / app_s),
                "root": _pcts(_timed(lambda: merkle.root(n, fetch), 20)),
                "inclusion": _pcts(_timed(lambda: merkle.inclusion_proof(rng.randrange(n), n,
                                                                         fetch), queries)),
                "consistency": _pcts(_timed(lambda: merkle.consistency_proof(
                    rng.randrange(1, n), n, fetch), queries))})
    print(out[-1], flush=True)
    return out


def table(d: dict[str, Any]) -> str:
    lines = ["appends (median of rounds)          with tree/s  without/s  slower"]
    lines += [f"  {a['mode']:<32} {a['with_tree_per_s']:>11} {a['without_tree_per_s']:>10} "
              f"{a['slowdown_pct']:>6}%" for a in d["appends"]]
    lines.append("proofs at N        head p50 ms  incl p50/p99 ms  incl B  cons p50/p99 ms  cons B")
    lines += [f"  {p['entries']:>12,}  {p['root']['p50_ms']:>10}  {p['inclusion']['p50_ms']}/"
              f"{p['inclusion']['p99_ms']:<10} {p['inclusion']['bytes']:>5}  "
              f"{p['consistency']['p50_ms']}/{p['consistency']['p99_ms']:<10} "
              f"{p['consistency']['bytes_max']:>5}" for p in d["proofs"]]
    v = d.get("verify")
    if v:
        lines.append(f"verify {v['entries']:,}: full {v['full_verify_s']} s, incremental (last "
                     f"{v['incremental_entries']}) {v['incremental_s']} s, x{v['speedup']}")
    lines += [f"  {r['system']:<30} append/s {r['append_per_s']:>8}  incl p50 "
              f"{r['inclusion']['p50_ms']} ms  cons p50 {r['consistency']['p50_ms']} ms"
              for r in d["pymerkle"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--max-entries", type=int, default=10_000_000)
    ap.add_argument("--verify-entries", type=int, default=1_000_000)
    ap.add_argument("--appends", type=int, default=2000, help="per round, 1 per transaction "
                    "(1000 per transaction: 10x as many)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pymerkle-entries", type=int, default=100_000)
    ap.add_argument("--no-pymerkle", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [s for s in (10**6, 10**7) if s <= args.max_entries] or [args.max_entries]
    with tempfile.TemporaryDirectory(dir=args.out) as tmpdir:
        tmp = Path(tmpdir)
        d: dict[str, Any] = {"appends": bench_appends(tmp, args.appends, args.rounds)
                             if args.appends else []}
        d["proofs"] = [bench_proofs(tmp, n) for n in sizes]
        d["verify"] = bench_verify(tmp, args.verify_entries) if args.verify_entries else None
        d["pymerkle"] = [] if args.no_pymerkle else bench_pymerkle(tmp, args.pymerkle_entries)
    (args.out / "ledger.json").write_text(json.dumps(d, indent=2))
    print(table(d))


if __name__ == "__main__":
    main()
