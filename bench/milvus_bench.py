"""Search at 1M faces: the embedded faiss index (what faceledger builds at that size) against
Milvus Lite (the product's Milvus index and search parameters), on the same synthetic
face-shaped gallery, side by side in one run (never run by the tests).

    .venv/bin/python bench/milvus_bench.py --sizes 1000000 [--fit bench/results/lfw_embeddings.npz]
        [--queries 500] [--milvus-efs 64,128,256] [--milvus-indexes HNSW] [--out bench/results]

Galleries and queries come from ``bench/search_bench.py`` and ``bench/index_scale_bench.py``
(N/10 identities x 10 samples; ``--fit``: a Gaussian model fitted to real embeddings, else the
cone model). Recall@10 is against exact search (faiss flat). Latency is one query at a time
from one client thread: for the embedded index, faiss on one OpenMP thread; for Milvus Lite, the
call through its gRPC client to Milvus Lite 3.x, which runs in this process (a Python engine:
faiss HNSW per segment of ~250k rows, segments merged and indexed on a background thread), so
``process_rss_bytes`` is the gallery's memory in Milvus Lite plus this script's.
The Milvus gallery is written through ``MilvusIndex.add`` (the product's upserts, 2,000 rows per
request), flushed, and searched once its index reports every row indexed. Writes
``milvus.json`` and ``milvus.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import index_scale_bench as isb
import search_bench as sb
from benchinfo import command_line, machine

from faceledger.gallery.index import FlatIndex, HnswIndex
from faceledger.gallery.index.faiss_common import faiss_module
from faceledger.gallery.index.faiss_hnsw import DEFAULT_EF_SEARCH
from faceledger.gallery.index.milvus_backend import MilvusConfig, MilvusIndex, check_config, connect
from faceledger.gallery.index.params import ef_search_for, hnsw_params
from faceledger.settings import Settings


def wait_indexed(index: MilvusIndex, size: int, limit_s: float) -> float:
    """Seconds until Milvus has indexed every row. A server says so in ``describe_index``;
    Milvus Lite 3.x says so at once but merges segments (up to 100k rows) and builds their
    faiss indexes on a background thread of this process afterwards, and searches the unindexed
    rows by brute force meanwhile, so its background queue is drained here too (a private call:
    bench only)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        info = index._client.describe_index(index.name, index_name="vector")
        if int(info.get("indexed_rows", 0)) >= size and not int(info.get("pending_index_rows", 0)):
            break
        time.sleep(2)
    for _ in range(3):  # a drained round can leave a merge that schedules one more
        for obj in gc.get_objects():
            if type(obj).__module__ == "milvus_lite.engine.collection" and hasattr(obj, "_wait_for_bg"):
                obj._wait_for_bg(timeout=max(1.0, limit_s - (time.perf_counter() - t0)))
                obj._bg_compact_and_index()
    return time.perf_counter() - t0


def embedded(size: int, args: argparse.Namespace, queries: Any, truth: Any) -> dict[str, Any]:
    """What ``faceledger`` builds at ``size``: exact up to ``index_exact_max``, else HNSW with
    the size table's efConstruction and efSearch."""
    if size <= Settings().index_exact_max:
        index, build_s, rss = sb.timed_build(lambda: sb.streamed(FlatIndex(sb.MODEL, sb.DIM), size,
                                                                 args, None, "flat"))
        return sb.row(size, "embedded: faiss exact", index, build_s, rss, queries, truth, True)
    rule = hnsw_params(size)
    ef = ef_search_for(size, DEFAULT_EF_SEARCH)
    graph, build_s, rss = sb.timed_build(lambda: sb.streamed(
        HnswIndex(sb.MODEL, sb.DIM, ef_construction=rule.ef_construction), size, args, None, "hnsw"))
    assert isinstance(graph, HnswIndex)
    graph.ef_search = ef
    return sb.row(size, f"embedded: faiss HNSW M=32 efC={rule.ef_construction} efSearch={ef}",
                  graph, build_s, rss, queries, truth, True)


def milvus(size: int, args: argparse.Namespace, queries: Any, truth: Any, index_type: str,
           folder: Path) -> list[dict[str, Any]]:
    config = check_config(MilvusConfig(uri=str(folder / f"{index_type.lower()}-{size}.db"),
                                       index_type=index_type))
    client = connect(config)
    try:
        t0 = time.perf_counter()
        index = MilvusIndex(client, config, sb.MODEL, sb.DIM, collection_id=1)
        sb.streamed(index, size, args, None, f"milvus {index_type}")  # type: ignore[arg-type]
        insert_s = time.perf_counter() - t0
        index.flush()
        flush_s = time.perf_counter() - t0 - insert_s
        index_s = wait_indexed(index, size, args.index_wait_s)
        assert index.count() == size, index.count()
        build = {"insert_s": round(insert_s, 1), "flush_s": round(flush_s, 1),
                 "index_wait_s": round(index_s, 1), "process_rss_bytes": sb.rss_bytes(),
                 "build_params": config.build_params()}
        print(f"  milvus {index_type}: {json.dumps(build)}", flush=True)
        efs = [int(e) for e in args.milvus_efs.split(",")] if index_type.startswith("HNSW") else [0]
        rows = []
        for ef in efs:
            cfg = dataclasses.replace(config, ef_search=ef) if ef else config
            view = MilvusIndex(client, cfg, sb.MODEL, sb.DIM, collection_id=1)
            default = ef in (0, Settings().index_ef_search)
            name = (f"Milvus Lite {index_type} {config.build_params()} "
                    f"{cfg.query_params(sb.K)}{' (product default)' if default else ''}")
            r = sb.row(size, name, view, insert_s + flush_s + index_s, 0, queries, truth, default)  # type: ignore[arg-type]
            rows.append(r | build | {"index_type": index_type, "search_params": cfg.query_params(sb.K)})
        return rows
    finally:
        client.close()


def bench_size(size: int, args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    stats = sb.cosine_stats(size, args.seed, None)
    queries = sb.make_queries(size, args, None)
    print(f"N={size}: {json.dumps({k: round(v, 3) for k, v in stats.items()})}", flush=True)
    exact, _, _ = sb.timed_build(lambda: sb.streamed(FlatIndex(sb.MODEL, sb.DIM), size, args, None,
                                                     "flat"))
    _, truth = exact.search(queries, sb.K)
    del exact
    rows = [embedded(size, args, queries, truth)]
    for index_type in args.milvus_indexes.split(","):
        rows += milvus(size, args, queries, truth, index_type.strip().upper(), folder)
    return [r | {"cosines": stats} for r in rows]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| N | index | build s | p50 ms | p99 ms | recall@10 |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['size']:,} | {r['index']} | {r['build_s']:.0f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['recall_at_10']:.4f} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--fit", type=Path, help="LFW embeddings .npz (vectors, identity); default: cone model")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--milvus-indexes", default="HNSW", help="Milvus Lite index types, comma-separated")
    ap.add_argument("--milvus-efs", default="64,128,256", help="HNSW ef values searched in Milvus")
    ap.add_argument("--index-wait-s", type=float, default=3600, help="longest wait for Milvus's index")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)
    data = isb.use_data(args.fit, args.seed)
    faiss_module().omp_set_num_threads(os.cpu_count() or 1)
    folder = Path(tempfile.mkdtemp(prefix="faceledger-milvus-bench-"))
    started = time.perf_counter()
    try:
        rows = [r for size in map(int, args.sizes.split(",")) for r in bench_size(size, args, folder)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    md = table(rows)
    print(md)
    import pymilvus  # type: ignore[import-untyped]

    report = {
        "command": command_line(argv),
        "machine": machine(faiss=faiss_module().__version__, pymilvus=pymilvus.__version__),
        "data": data, "elapsed_s": round(time.perf_counter() - started, 1), "results": rows, "markdown": md}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "milvus.json").write_text(json.dumps(report, indent=2))
    (args.out / "milvus.md").write_text(f"# Embedded faiss vs Milvus Lite\n\n`{report['command']}`; "
                                        f"data: {report['data']}\n\n{md}\n")
    print(f"wrote {args.out / 'milvus.json'} and milvus.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
