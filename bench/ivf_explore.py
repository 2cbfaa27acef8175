"""IVF fast-scan variants for the 10M target (issue 15 part 4; never run by the tests).

    nice -n 19 .venv/bin/python bench/ivf_explore.py --size 1000000 \\
        --run 'IVF4096,PQ64x4fs nprobe=256,512 F=100,200 implem=0,12 rerank=f32,sq8:50' \\
        --run 'IVF4096,PQ64x4fs spill=soar nprobe=128,256 F=100' [--out bench/results/ivf_explore.json]

Same galleries, queries and exact top-10 as ``bench/ivfpq_bench.py`` (fitted to real dlib
embeddings). Each ``--run`` is one index (a faiss factory string, inner product, spherical k-means,
residual codes) and a grid of search settings, ``key=v1,v2`` each:

- ``spill``: ``1`` (each vector in its nearest list), ``2`` (also in its second nearest list) or
  ``soar`` (also in the list that minimises SOAR's orthogonality-amplified residual loss,
  lambda 1, among the 16 nearest); candidates are de-duplicated before the re-rank.
- ``nprobe``, ``F`` (re-rank ``10 * F`` candidates), ``implem`` / ``qbs`` (fast-scan kernels),
  ``ef`` (efSearch of an HNSW coarse quantizer, default ``max(nprobe, 64)``).
- ``rerank``: ``f32`` (exact, float vectors), ``f16`` (float16 copies only: half the memory,
  scores rounded), ``sq8:R`` (uint8 per-dimension codes re-rank all candidates, then the best R
  are re-ranked exactly from the floats).

Runs with the same factory share one training; runs with the same factory and spill share the
index. Rows split a query's time into faiss (coarse quantizer + list scan) and the numpy re-rank,
wall and thread CPU (the machine is shared; the lead may pause the process).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import index_scale_bench as isb
import ivfpq_bench as ib
import search_bench as sb
from benchinfo import command_line, machine

from faceledger.gallery.index.faiss_common import faiss_module

K = sb.K
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
SOAR_CANDIDATES = 16
ADD_CHUNK = 100_000


def all_threads() -> None:
    faiss_module().omp_set_num_threads(os.cpu_count() or 1)


def train(store: F32, factory: str, args: argparse.Namespace) -> tuple[Any, float]:
    """An empty, trained index for ``factory`` (spherical k-means on ``train_per_list`` a list); for
    ``...x4fs`` the same index without ``fs`` (``fill`` converts it)."""
    faiss = faiss_module()
    all_threads()
    plain = factory.removesuffix("fs")  # fast-scan indexes are filled as IVFPQ, then converted
    index = faiss.index_factory(sb.DIM, plain, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.by_residual = True
    ivf.cp.spherical, ivf.cp.niter, ivf.cp.seed = True, args.niter, args.seed
    ivf.cp.max_points_per_centroid = args.train_per_list
    flat = None
    if "HNSW" in factory:  # k-means assigns with a flat index, the HNSW graph is built after
        flat = faiss.IndexFlatIP(sb.DIM)
        ivf.clustering_index = flat
    t0 = time.perf_counter()
    index.train(store[: min(store.shape[0], args.train_per_list * ivf.nlist)])
    ivf.clustering_index = None
    del flat
    return index, time.perf_counter() - t0


def second_lists(x: F32, first: I64, cand: I64, xc: F32, mode: str, cents: F32, gram: F32) -> I64:
    """The spilled list of each row of ``x``: the nearest other list, or SOAR's choice.

    With unit ``x``, ``xc = x . c`` for the candidate lists and ``gram`` the centroids' inner
    products, SOAR's loss ``|x - c|^2 + (r . (x - c))^2 / |r|^2`` (r = x - c_first) needs no
    vector arithmetic.
    """
    other = cand != first[:, None]
    rows = np.arange(x.shape[0])
    if mode == "2":
        out: I64 = cand[rows, np.argmax(other, axis=1)]
        return out
    norms = np.einsum("ij,ij->i", cents, cents)
    x2 = np.einsum("ij,ij->i", x, x)[:, None]
    xc1 = np.einsum("ij,ij->i", x, cents[first])[:, None]
    rp2 = x2 + norms[cand] - 2 * xc
    r2 = np.maximum(x2 + norms[first][:, None] - 2 * xc1, 1e-12)
    along = x2 - xc1 - xc + gram[cand, first[:, None]]
    loss = rp2 + along * along / r2  # lambda 1
    loss[~other] = np.inf
    out = cand[rows, np.argmin(loss, axis=1)]
    return out


def fill(index: Any, store: F32, spill: str, fast_scan: bool) -> tuple[Any, float]:
    """Add the gallery (ids = rows) to ``index``; spilled runs add each vector to a second list
    (``add_core`` with the list numbers: the fast-scan lists take no precomputed assignment, so
    the codes go into an IVFPQ that is then converted to ``IndexIVFPQFastScan``)."""
    faiss = faiss_module()
    all_threads()
    ivf = faiss.extract_index_ivf(index)
    cents = ivf.quantizer.reconstruct_n(0, ivf.nlist) if spill != "1" else np.empty((0, 0), np.float32)
    gram = cents @ cents.T if spill == "soar" else cents
    t0 = time.perf_counter()
    for start in range(0, store.shape[0], ADD_CHUNK):
        x = np.ascontiguousarray(store[start:start + ADD_CHUNK])
        ids = np.arange(start, start + x.shape[0], dtype=np.int64)
        if spill == "1":
            ivf.add_with_ids(x, ids)
            continue
        xc, cand = ivf.quantizer.search(x, SOAR_CANDIDATES)
        if ivf.quantizer.metric_type != faiss.METRIC_INNER_PRODUCT:
            xc = (2 - xc) / 2  # squared L2 to unit centroids
        first = np.ascontiguousarray(cand[:, 0])
        second = second_lists(x, first, cand, xc, spill, cents, gram)
        for lists in (first, np.ascontiguousarray(second, dtype=np.int64)):
            ivf.add_core(x.shape[0], faiss.swig_ptr(x), faiss.swig_ptr(ids), faiss.swig_ptr(lists))
    if fast_scan:
        ivf = faiss.downcast_index(ivf)
        fs = faiss.IndexIVFPQFastScan(ivf)
        fs.referenced_objects = [index, ivf]  # owns the coarse quantizer; its flat codes are dropped
        ivf.invlists.reset()
        index = fs
    return index, time.perf_counter() - t0


class Reranker:
    """The re-rank stores (float32 always; float16 and uint8 codes built when first asked for)."""

    def __init__(self, store: F32) -> None:
        self.store = store
        self.f16: npt.NDArray[np.float16] | None = None
        self.sq8: npt.NDArray[np.uint8] | None = None
        self.scale = np.ones(sb.DIM, dtype=np.float32)

    def prepare(self, mode: str) -> None:
        if mode == "f16" and self.f16 is None:
            self.f16 = np.empty(self.store.shape, dtype=np.float16)
            for s in range(0, self.store.shape[0], 1 << 20):
                self.f16[s:s + (1 << 20)] = self.store[s:s + (1 << 20)]
        if mode.startswith("sq8") and self.sq8 is None:
            sample = self.store[:: max(1, self.store.shape[0] // 200_000)]
            lo, hi = sample.min(axis=0), sample.max(axis=0)
            self.scale = ((hi - lo) / 255).astype(np.float32)
            self.sq8 = np.empty(self.store.shape, dtype=np.uint8)
            for s in range(0, self.store.shape[0], 1 << 20):
                part = (self.store[s:s + (1 << 20)] - lo) / self.scale
                self.sq8[s:s + (1 << 20)] = np.clip(np.rint(part), 0, 255)

    def nbytes(self, mode: str) -> int:
        if mode == "f16":
            return self.store.size * 2
        return int(self.store.nbytes) + (self.store.size if mode.startswith("sq8") else 0)

    @staticmethod
    def best(c: I64, s: F32, n: int) -> I64:
        if c.size <= n:
            return c[np.argsort(-s)]
        top = np.argpartition(-s, n - 1)[:n]
        out: I64 = c[top[np.argsort(-s[top])]]
        return out

    def rerank(self, c: I64, q: F32, mode: str) -> I64:
        if mode == "f32":
            return self.best(c, self.store[c] @ q, K)
        if mode == "f16":
            assert self.f16 is not None
            return self.best(c, self.f16[c].astype(np.float32) @ q, K)
        assert self.sq8 is not None
        c = self.best(c, self.sq8[c].astype(np.float32) @ (q * self.scale), int(mode.split(":")[1]))
        return self.best(c, self.store[c] @ q, K)


def measure(index: Any, rr: Reranker, queries: F32, truth: I64, setting: dict[str, Any],
            spilled: bool) -> dict[str, Any]:
    """Single-query, single-thread timings (total and the faiss part) and recall@10."""
    faiss = faiss_module()
    ivf = faiss.extract_index_ivf(index)
    if hasattr(ivf, "implem"):
        ivf.implem, ivf.qbs = setting["implem"], setting["qbs"]
    qparams = None
    if "HNSW" in setting["factory"]:
        qparams = faiss.SearchParametersHNSW(efSearch=setting["ef"] or max(setting["nprobe"], 64))
    params = faiss.SearchParametersIVF(nprobe=setting["nprobe"], quantizer_params=qparams)
    mode, kk = setting["rerank"], K * setting["F"]
    rr.prepare(mode)
    n = queries.shape[0]
    t = np.empty((n, 4))  # wall total, cpu total, wall faiss, cpu faiss
    ncand = np.empty(n)
    found = []
    faiss.omp_set_num_threads(1)
    ib.numpy_blas_threads(1)
    faiss.cvar.indexIVF_stats.reset()
    with ib.Foreground():
        for i in range(n):
            q = queries[i:i + 1]
            c0, w0 = time.thread_time(), time.perf_counter()
            _, cand = index.search(q, kk, params=params)
            c1, w1 = time.thread_time(), time.perf_counter()
            c = cand[0][cand[0] >= 0]
            if spilled:
                c = np.unique(c)
            out = c[:K] if setting["F"] == 1 else rr.rerank(c, q[0], mode)
            c2, w2 = time.thread_time(), time.perf_counter()
            t[i] = (w2 - w0, c2 - c0, w1 - w0, c1 - c0)
            ncand[i] = c.size
            found.append(out)
    ndis = faiss.cvar.indexIVF_stats.ndis / n
    all_threads()
    ib.numpy_blas_threads(os.cpu_count() or 1)
    hits = sum(len(set(f.tolist()) & set(r.tolist())) for f, r in zip(found, truth, strict=True))
    ms = 1e3
    return {"p50_ms": round(float(np.median(t[:, 0])) * ms, 3),
            "p99_ms": round(float(np.percentile(t[:, 0], 99)) * ms, 3),
            "cpu_p50_ms": round(float(np.median(t[:, 1])) * ms, 3),
            "cpu_p99_ms": round(float(np.percentile(t[:, 1], 99)) * ms, 3),
            "faiss_p50_ms": round(float(np.median(t[:, 2])) * ms, 3),
            "faiss_cpu_p50_ms": round(float(np.median(t[:, 3])) * ms, 3),
            "rerank_p50_ms": round(float(np.median(t[:, 0] - t[:, 2])) * ms, 3),
            "rerank_cpu_p50_ms": round(float(np.median(t[:, 1] - t[:, 3])) * ms, 3),
            "candidates": round(float(ncand.mean()), 1), "codes_scanned": round(ndis),
            "recall_at_10": round(hits / truth.size, 4)}


def cached_gallery(args: argparse.Namespace, queries: F32) -> tuple[F32, I64, float]:
    """``ib.gallery``, loaded from (or saved to) ``args.cache`` when given."""
    if args.cache is None:
        return ib.gallery(args.size, args, queries)
    stem = args.cache / f"n{args.size}_s{args.seed}_q{args.queries}"
    t0 = time.perf_counter()
    if Path(f"{stem}_truth.npy").exists():
        return np.load(f"{stem}_store.npy"), np.load(f"{stem}_truth.npy"), time.perf_counter() - t0
    store, truth, gen_s = ib.gallery(args.size, args, queries)
    args.cache.mkdir(parents=True, exist_ok=True)
    np.save(f"{stem}_store.npy", store)
    np.save(f"{stem}_truth.npy", truth)  # last: its presence means the cache is whole
    return store, truth, gen_s


GRID_DEFAULTS = {"spill": "1", "nprobe": "256", "F": "100", "implem": "0", "qbs": "0", "ef": "0",
                 "rerank": "f32"}


def parse_run(text: str) -> tuple[str, dict[str, list[str]]]:
    factory, *rest = text.split()
    grid = {k: v.split(",") for k, v in GRID_DEFAULTS.items()}
    for item in rest:
        key, _, value = item.partition("=")
        if key not in grid:
            raise SystemExit(f"unknown setting {key!r} in {text!r}")
        grid[key] = value.split(",")
    return factory, grid


def index_bytes(index: Any) -> int:
    ivf = faiss_module().extract_index_ivf(index)
    codes = sum(ivf.invlists.list_size(i) for i in range(ivf.nlist)) * ivf.code_size
    return int(codes + 8 * ivf.ntotal + ivf.nlist * sb.DIM * 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--fit", type=Path, default=ib.DEFAULT_FIT)
    ap.add_argument("--run", action="append", help="none: only generate (and cache) the gallery")
    ap.add_argument("--cache", type=Path, help="folder keeping the gallery and exact top-10 (.npy)")
    ap.add_argument("--train-per-list", type=int, default=32)
    ap.add_argument("--niter", type=int, default=10)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/results/ivf_explore.json"))
    args = ap.parse_args(argv)
    faiss = faiss_module()
    data = isb.use_data(args.fit, args.seed)
    queries = sb.make_queries(args.size, args, None)
    store, truth, gen_s = cached_gallery(args, queries)
    if args.run is None:
        return 0
    print(f"N={args.size} ({data}): gallery + exact top-{K} in {gen_s:.0f} s, "
          f"RSS {sb.rss_bytes() / 2**30:.1f} GiB", flush=True)
    rr = Reranker(store)
    runs = [parse_run(r) for r in args.run]
    trained: dict[str, tuple[bytes, float]] = {}
    rows: list[dict[str, Any]] = []
    for (factory, spill), group in itertools.groupby(
            [(f, s, g) for f, g in runs for s in g["spill"]], key=lambda r: (r[0], r[1])):
        if factory not in trained:
            empty, train_s = train(store, factory, args)
            trained[factory] = (faiss.serialize_index(empty), train_s)
            del empty
        index = faiss.deserialize_index(trained[factory][0])
        index, add_s = fill(index, store, spill, factory.endswith("fs"))
        nbytes, train_s = index_bytes(index), trained[factory][1]
        print(f"{factory} spill={spill}: train {train_s:.0f} s, add {add_s:.0f} s, "
              f"{nbytes / 2**20:.0f} MB, RSS {sb.rss_bytes() / 2**30:.1f} GiB", flush=True)
        for _, _, grid in group:
            keys = [k for k in GRID_DEFAULTS if k != "spill"]
            for values in itertools.product(*(grid[k] for k in keys)):
                s: dict[str, Any] = dict(zip(keys, values, strict=True))
                for k in ("nprobe", "F", "implem", "qbs", "ef"):
                    s[k] = int(s[k])
                s["factory"] = factory
                r = {"size": args.size, "config": f"{factory} spill={spill} nprobe={s['nprobe']} "
                     f"F={s['F']} implem={s['implem']} qbs={s['qbs']} rerank={s['rerank']}"
                     + (f" ef={s['ef']}" if "HNSW" in factory else ""),
                     "spill": spill, **s, "train_s": round(train_s, 1),
                     "build_s": round(train_s + add_s, 1), "index_bytes": nbytes,
                     "rerank_bytes": rr.nbytes(s["rerank"])}
                try:
                    r |= measure(index, rr, queries, truth, s, spill != "1")
                except RuntimeError as e:  # an implem that does not support this case
                    print(f"  {r['config']}: {e}", flush=True)
                    continue
                r["gib"] = round((r["index_bytes"] + r["rerank_bytes"]) / 2**30, 2)
                print(f"  {json.dumps(r)}", flush=True)
                rows.append(r)
                args.out.write_text(json.dumps({"command": command_line(argv), "partial": True,
                                                "results": rows}, indent=1))
        del index
    md = ["| config | p50 ms | CPU p50 | faiss CPU p50 | re-rank CPU p50 | p99 ms | recall@10 | "
          "GiB | build s |", "|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['config']} | {r['p50_ms']:.2f} | {r['cpu_p50_ms']:.2f} | {r['faiss_cpu_p50_ms']:.2f} | "
           f"{r['rerank_cpu_p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['recall_at_10']:.4f} | {r['gib']:.2f} | "
           f"{r['build_s']:.0f} |" for r in rows]
    print("\n".join(md))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": command_line(argv), "machine": machine(faiss=faiss.__version__), "data": data,
        "size": args.size, "queries": args.queries, "results": rows, "markdown": "\n".join(md)},
        indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
