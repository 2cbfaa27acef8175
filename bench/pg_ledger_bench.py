"""Ledger appends/s with 1, 4 and 16 concurrent writer processes, on PostgreSQL (and SQLite for
comparison), each run ending with the product's full verification (never run by the tests).

    .venv/bin/python bench/pg_ledger_bench.py --out bench/results [--writers 1,4,16]
        [--seconds 10 | --count N] [--pg durable,nofsync] [--no-sqlite] [--url URL]

Every writer is a separate process (spawned) that appends through ``ledger.append`` inside its
own write transaction, one append per transaction, as the app commits each action
(``Database.write()``: a transaction-scoped advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite). The writers start together at a barrier and append for ``--seconds`` (or ``--count``
each); appends/s is all appends over the time from the first start to the last finish. Each
run uses a fresh database initialised by ``Faceledger.initialise`` and ends with
``verify_log`` (what ``faceledger ledger verify`` runs: the hash chain, the records, the Merkle
tree's root against the entries) and a check that seq runs 1..N with every writer's appends
there once.

PostgreSQL: a throwaway server (``tests/pg.py``'s machinery: initdb in a temp folder, run as
the ``postgres`` user when we are root, 127.0.0.1 on a free port), started once per ``--pg``
setting: ``durable`` is the server's defaults (fsync, synchronous_commit on: every commit waits
for its WAL flush), ``nofsync`` is what the tests use (fsync, synchronous_commit and
full_page_writes off). ``--url`` (a ``postgresql+psycopg://`` maintenance URL whose user may
CREATE DATABASE) uses a server you run instead. Writes ``pg_ledger.json`` and ``pg_ledger.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchinfo import command_line, machine
from sqlalchemy import select

from faceledger.core import Faceledger
from faceledger.db.engine import Database
from faceledger.db.schema import LedgerEntry
from faceledger.governance import ledger
from faceledger.governance.log_verify import verify_log
from faceledger.settings import Settings
from tests import pg

KIND = "bench.append"
SETTINGS = {"durable": "", "nofsync": "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"}


def writer(url: str, worker: int, seconds: float, count: int, barrier: Any, out: Any) -> None:
    """Append until the deadline (or ``count`` appends), one write transaction each."""
    db = Database(url)
    lat: list[float] = []
    try:
        barrier.wait(timeout=300)
        start = time.perf_counter()
        deadline = start + seconds
        n = 0
        while (n < count) if count else (time.perf_counter() < deadline):
            t0 = time.perf_counter()
            with db.write() as s:
                ledger.append(s, KIND, {"worker": worker, "i": n, "note": "x" * 40},
                              actor=f"bench-{worker}", case_ref="B-1")
            lat.append(time.perf_counter() - t0)
            n += 1
        out.put((worker, n, start, time.perf_counter(), lat))
    finally:
        db.dispose()


def start_server(bindir: Path, setting: str) -> pg.PgServer:
    """A throwaway server as ``tests/pg.py`` starts one, with ``SETTINGS[setting]``."""
    folder = Path(tempfile.mkdtemp(prefix="faceledger-pgbench-"))
    prefix = pg._as_user()
    if prefix:
        shutil.chown(folder, "postgres", "postgres")
    data, log = folder / "data", folder / "server.log"
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A",
                    "trust", "-E", "UTF8", "--locale=C"], check=True, capture_output=True, timeout=120)
    port = pg.free_port()
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c max_connections=100 "
            f"{SETTINGS[setting]}")
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts,
                    "-w", "-t", "60", "start"], check=True, capture_output=True, timeout=90)
    return pg.PgServer(url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
                       folder=folder, bindir=bindir)


def one_run(url: str, home: Path, writers: int, args: argparse.Namespace) -> dict[str, Any]:
    app = Faceledger(Settings(home=home, database_url=url, workers=1))
    _, token = app.initialise("bench")
    admin = app.authenticate(token)
    with app.db.read() as s:
        before = ledger.verify(s).head_seq
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(writers), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(url, w, args.seconds, args.count, barrier, out))
             for w in range(writers)]
    for p in procs:
        p.start()
    got = [out.get(timeout=args.seconds + 600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * writers, [p.exitcode for p in procs]
    total = sum(g[1] for g in got)
    elapsed = max(g[3] for g in got) - min(g[2] for g in got)
    lat = sorted(x for g in got for x in g[4])
    t0 = time.perf_counter()
    report = verify_log(app, admin)
    verify_s = time.perf_counter() - t0
    with app.db.read() as s:
        rows = s.execute(select(LedgerEntry.seq, LedgerEntry.kind, LedgerEntry.payload)
                         .order_by(LedgerEntry.seq)).all()
    mine = Counter((p["worker"], p["i"]) for _q, k, body in rows if k == KIND
                   for p in [json.loads(body)])
    complete = ([r[0] for r in rows] == list(range(1, before + total + 1))
                and mine == Counter((g[0], i) for g in got for i in range(g[1])))
    app.close()
    row = {"writers": writers, "appends": total, "seconds": round(elapsed, 2),
           "appends_per_s": round(total / elapsed, 1),
           "p50_ms": round(1000 * statistics.median(lat), 2),
           "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
           "verify_ok": bool(report.ok and complete), "verify_reason": report.reason,
           "verify_s": round(verify_s, 2), "tree_size": report.tree_size,
           "load_avg_1m": round(os.getloadavg()[0], 2),
           "per_writer": sorted(g[1] for g in got)}
    print(f"    {json.dumps(row)}", flush=True)
    return row


def bench_pg(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for setting in ([None] if args.url else args.pg.split(",")):
        if args.url:
            server = pg.PgServer(url=args.url)
        else:
            bindir = pg.bin_dir()
            if bindir is None:
                raise SystemExit("no PostgreSQL binaries: run scripts/ensure-postgres")
            server = start_server(bindir, setting or "durable")
        try:
            for n in map(int, args.writers.split(",")):
                url = server.create_database(migrated=True)
                print(f"  PostgreSQL {setting or 'given'}: {n} writers", flush=True)
                try:
                    rows.append({"database": f"PostgreSQL ({setting or args.url})"}
                                | one_run(url, tmp / f"pg-{setting}-{n}", n, args))
                finally:
                    server.drop_database(url)
        finally:
            server.stop()
    return rows


def bench_sqlite(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for n in map(int, args.writers.split(",")):
        home = tmp / f"sqlite-{n}"
        print(f"  SQLite: {n} writers", flush=True)
        url = f"sqlite:///{home / 'faceledger.db'}"
        home.mkdir(parents=True)
        rows.append({"database": "SQLite (WAL, file)"} | one_run(url, home, n, args))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| database | writers | appends | seconds | appends/s | p50 ms | p99 ms | verify OK | "
             "load avg |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['database']} | {r['writers']} | {r['appends']:,} | {r['seconds']:.1f} | "
              f"{r['appends_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{'yes' if r['verify_ok'] else 'NO: ' + str(r['verify_reason'])} | "
              f"{r.get('load_avg_1m', '')} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writers", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=10.0, help="append for this long per run")
    ap.add_argument("--count", type=int, default=0, help="appends per writer instead of --seconds")
    ap.add_argument("--pg", default="durable,nofsync", help=f"server settings: {', '.join(SETTINGS)}")
    ap.add_argument("--url", help="a PostgreSQL server you run (maintenance database URL)")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite comparison")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)
    unknown = set(args.pg.split(",")) - set(SETTINGS)
    if unknown:
        ap.error(f"unknown --pg setting(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="faceledger-ledger-bench-"))
    try:
        rows = bench_pg(args, tmp)
        if not args.no_sqlite:
            rows += bench_sqlite(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    md = table(rows)
    print(md)
    report = {
        "command": command_line(argv), "machine": machine(postgresql=_pg_version()),
        "elapsed_s": round(time.perf_counter() - started, 1), "results": rows, "markdown": md}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pg_ledger.json").write_text(json.dumps(report, indent=2))
    (args.out / "pg_ledger.md").write_text(f"# Ledger appends/s, concurrent writer processes\n\n"
                                           f"`{report['command']}`\n\n{md}\n")
    print(f"wrote {args.out / 'pg_ledger.json'} and pg_ledger.md")
    return 0 if all(r["verify_ok"] for r in rows) else 1


def _pg_version() -> str | None:
    bindir = pg.bin_dir()
    if bindir is None:
        return None
    done = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True)
    return done.stdout.strip() or None


if __name__ == "__main__":
    raise SystemExit(main())
