"""Benchmark the local vector indexes on synthetic face-like galleries (never run by the tests).

    .venv/bin/python bench/search_bench.py --sizes 100000,1000000 [--centers FILE.npy]
        [--queries 1000] [--nprobes 16,32,64] [--nlists auto] [--out bench/results/search.json]

Gallery: N/10 identities x 10 samples, 128-d, L2-normalised. A sample is
``normalize(centre + SIGMA * g)`` with ``g ~ N(0, I)``; for two samples of one identity
``E[cos] ~= 1 / (1 + d * SIGMA**2)``, so ``SIGMA = sqrt((1/0.9 - 1) / d) ~= 0.0295`` gives a
same-identity cosine of about 0.9. Identity centres are random unit vectors (two different identities
then have cosine ~ N(0, 1/d): mean 0, std ~0.09, which is how unrelated faces look to a
metric-learned face model), or, with ``--centers real.npy`` ((m, 128) real face embeddings), each
centre is ``normalize(real[j] + TAU * g)`` for a random real embedding ``j`` with
``TAU = sqrt(1/d)``: identities grown from the same real face have cosine ~0.5 with each other
(look-alikes), and the gallery follows the real embeddings' distribution. The measured
same/different cosines are written to the output.

Queries are fresh samples of random gallery identities. Latency is single-query, single-thread,
through the public ``search`` API (validation included); build uses all cores. Recall@10 is
against exact search.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faceledger.gallery.index import (
    DEFAULT_EXACT_MAX,
    DEFAULT_NPROBE,
    FlatIndex,
    HnswIndex,
    IvfIndex,
    VectorIndex,
    nlist_for,
)
from faceledger.gallery.index.faiss_common import faiss_module
from faceledger.gallery.index.faiss_hnsw import DEFAULT_EF_SEARCH

DIM = 128
PER_IDENTITY = 10
SAME_COS = 0.9
SIGMA = math.sqrt((1 / SAME_COS - 1) / DIM)
TAU = math.sqrt(1 / DIM)
K = 10
MODEL = "bench-synthetic"
F32 = npt.NDArray[np.float32]


def normalise(x: F32) -> F32:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


# With --fit real.npz: a Gaussian model of real face embeddings (global mean, the covariance of
# identity means, and the within-identity covariance), so synthetic galleries have the real
# same/different-person score distributions (dlib: same ~0.95, different ~0.83 cosine).
FIT: tuple[F32, F32, F32] | None = None


def fit_real(npz: Path) -> dict[str, float]:
    global FIT
    data = np.load(npz)
    x, ident = data["vectors"].astype(np.float64), data["identity"]
    names, inv, counts = np.unique(ident, return_inverse=True, return_counts=True)
    sums = np.zeros((len(names), x.shape[1]))
    np.add.at(sums, inv, x)
    means = sums / counts[:, None]
    multi = counts[inv] >= 2
    resid = (x - means[inv])[multi] * np.sqrt(counts[inv][multi] / (counts[inv][multi] - 1))[:, None]
    mu = x.mean(axis=0)
    cov_b = np.cov(means[counts >= 2].T)
    cov_w = np.cov(resid.T)
    FIT = (mu.astype(np.float32), np.linalg.cholesky(cov_b + 1e-9 * np.eye(DIM)).astype(np.float32),
           np.linalg.cholesky(cov_w + 1e-9 * np.eye(DIM)).astype(np.float32))
    return {"identities": float(len(names)), "images": float(len(x))}


def make_centres(n_ids: int, rng: np.random.Generator, real: F32 | None) -> F32:
    if FIT is not None:
        mu, lb, _ = FIT
        out: F32 = (mu + rng.standard_normal((n_ids, DIM), dtype=np.float32) @ lb.T).astype(np.float32)
        return out
    if real is None:
        return normalise(rng.standard_normal((n_ids, DIM), dtype=np.float32))
    seeds = real[rng.integers(real.shape[0], size=n_ids)]
    return normalise(seeds + TAU * rng.standard_normal((n_ids, DIM), dtype=np.float32))


def samples(centres: F32, which: npt.NDArray[np.int64], rng: np.random.Generator) -> F32:
    out = np.empty((which.size, DIM), dtype=np.float32)
    for start in range(0, which.size, 100_000):
        sel = which[start : start + 100_000]
        noise = rng.standard_normal((sel.size, DIM), dtype=np.float32)
        chunk = centres[sel] + (noise @ FIT[2].T if FIT is not None else SIGMA * noise)
        out[start : start + sel.size] = normalise(chunk)
    return out


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def latency_ms(index: VectorIndex, queries: F32) -> tuple[float, float]:
    faiss = faiss_module()
    faiss.omp_set_num_threads(1)
    times = np.empty(queries.shape[0])
    for i in range(queries.shape[0]):
        t0 = time.perf_counter()
        index.search(queries[i : i + 1], K)
        times[i] = time.perf_counter() - t0
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def recall_at_k(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def timed_build(fn: Any) -> tuple[VectorIndex, float, int]:
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    index: VectorIndex = fn()
    return index, time.perf_counter() - t0, rss_bytes() - rss0


def row(
    size: int,
    name: str,
    index: VectorIndex,
    build_s: float,
    rss: int,
    queries: F32,
    truth: npt.NDArray[np.int64],
    picked: bool,
) -> dict[str, Any]:
    p50, p99 = latency_ms(index, queries)
    _, found = index.search(queries, K)
    nbytes = index.serialized_size() if isinstance(index, FlatIndex | IvfIndex | HnswIndex) else -1
    out = {
        "size": size,
        "index": name,
        "kind": index.kind,
        "picked_by_build_index": picked,
        "build_s": round(build_s, 2),
        "index_bytes": nbytes,
        "rss_delta_bytes": rss,
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "recall_at_10": round(recall_at_k(found, truth), 4),
    }
    if isinstance(index, IvfIndex):
        out |= {"nlist": index.nlist, "nprobe": index.nprobe}
    print(f"  {name}: {json.dumps(out)}", flush=True)
    return out


CHUNK_IDS = 10_000  # identities per generated chunk (100,000 vectors)


def chunk_centres(size: int, seed: int, j: int, real: F32 | None) -> tuple[F32, np.random.Generator]:
    """Centres of identity chunk ``j`` and the generator that goes on to draw its samples.

    Every chunk has its own seed, so a chunk can be regenerated (for queries) and the gallery never
    has to be held whole: at 10M vectors that is 5 GB beside the index being built.
    """
    n_ids = size // PER_IDENTITY
    rng = np.random.default_rng([seed, size, j])
    count = min(CHUNK_IDS, n_ids - j * CHUNK_IDS)
    return make_centres(count, rng, real), rng


def gallery_chunks(size: int, seed: int, real: F32 | None) -> Any:
    """Yield ``(ids, vectors)`` chunk by chunk; identity ``i`` owns ids ``i*10 .. i*10+9``."""
    n_ids = size // PER_IDENTITY
    for j in range(math.ceil(n_ids / CHUNK_IDS)):
        centres, rng = chunk_centres(size, seed, j, real)
        vecs = samples(centres, np.repeat(np.arange(centres.shape[0]), PER_IDENTITY), rng)
        first = j * CHUNK_IDS * PER_IDENTITY
        yield np.arange(first, first + vecs.shape[0], dtype=np.int64), vecs


def make_queries(size: int, args: argparse.Namespace, real: F32 | None) -> F32:
    """Fresh samples (not gallery members) of random gallery identities."""
    rng = np.random.default_rng([args.seed, size, 1 << 30])
    who = rng.integers(size // PER_IDENTITY, size=args.queries)
    out = np.empty((who.size, DIM), dtype=np.float32)
    for j in np.unique(who // CHUNK_IDS):
        centres, _ = chunk_centres(size, args.seed, int(j), real)
        sel = np.flatnonzero(who // CHUNK_IDS == j)
        out[sel] = samples(centres, (who[sel] % CHUNK_IDS).astype(np.int64), rng)
    return out


def cosine_stats(size: int, seed: int, real: F32 | None) -> dict[str, float]:
    _, first = next(gallery_chunks(size, seed, real))
    n_ids = first.shape[0] // PER_IDENTITY
    rng = np.random.default_rng([seed, size, 1 << 31])
    pairs = rng.integers(n_ids, size=2000)
    same = np.einsum("ij,ij->i", first[pairs * PER_IDENTITY], first[pairs * PER_IDENTITY + 1])
    other = first[((pairs + 1 + rng.integers(n_ids - 1, size=2000)) % n_ids) * PER_IDENTITY]
    diff = np.einsum("ij,ij->i", first[pairs * PER_IDENTITY], other)
    return {
        "same_cos_mean": float(same.mean()),
        "same_cos_std": float(same.std()),
        "diff_cos_mean": float(diff.mean()),
        "diff_cos_std": float(diff.std()),
        "diff_cos_p99": float(np.percentile(diff, 99)),
    }


def streamed(index: VectorIndex, size: int, args: argparse.Namespace, real: F32 | None,
             label: str) -> VectorIndex:
    """Add the gallery to ``index`` chunk by chunk (as ``build_index`` does), with progress."""
    t0 = time.perf_counter()
    for n, (ids, vecs) in enumerate(gallery_chunks(size, args.seed, real), 1):
        index.add(ids, vecs)
        if n % 10 == 0:
            print(f"    {label}: {index.count():,}/{size:,} in {time.perf_counter() - t0:.0f} s, "
                  f"RSS {rss_bytes() / 2**30:.1f} GiB", file=sys.stderr, flush=True)
    return index


def trained_ivf(size: int, args: argparse.Namespace, real: F32 | None, nlist: int | None) -> IvfIndex:
    """An IVF index trained on the first chunks (they are i.i.d. draws like the rest)."""
    want = 64 * (nlist or nlist_for(size))
    parts: list[F32] = []
    have = 0
    for _, vecs in gallery_chunks(size, args.seed, real):
        parts.append(vecs)
        have += vecs.shape[0]
        if have >= want:
            break
    ivf = IvfIndex(MODEL, DIM, nlist=nlist, nprobe=DEFAULT_NPROBE)
    ivf.train(np.concatenate(parts), expected_count=size)
    return ivf


def bench_size(
    size: int, args: argparse.Namespace, real: F32 | None
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    stats = cosine_stats(size, args.seed, real)
    queries = make_queries(size, args, real)
    print(f"N={size}: {json.dumps({k: round(v, 3) for k, v in stats.items()})}", flush=True)

    exact, build_s, rss = timed_build(lambda: streamed(FlatIndex(MODEL, DIM), size, args, real, "flat"))
    _, truth = exact.search(queries, K)
    rows = [row(size, "exact (flat)", exact, build_s, rss, queries, truth, size <= DEFAULT_EXACT_MAX)]
    del exact
    if size <= DEFAULT_EXACT_MAX:
        return rows, stats
    # HnswIndex with the fixed defaults (efConstruction 64), added in chunks of 100,000 as
    # build_index adds them; index_scale_bench.py measures the size table's efConstruction
    graph, build_s, rss = timed_build(lambda: streamed(HnswIndex(MODEL, DIM), size, args, real, "hnsw"))
    assert isinstance(graph, HnswIndex)
    for ef in sorted({DEFAULT_EF_SEARCH, *map(int, args.efs.split(","))}):
        graph.ef_search = ef
        name = f"hnsw M=32 efSearch={ef}"
        rows.append(row(size, name, graph, build_s, rss, queries, truth, ef == DEFAULT_EF_SEARCH))
    del graph
    for nlist_arg in [] if args.nlists == "none" else args.nlists.split(","):
        nlist = None if nlist_arg == "auto" else int(nlist_arg)
        ivf, build_s, rss = timed_build(
            lambda nlist=nlist: streamed(trained_ivf(size, args, real, nlist), size, args, real, "ivf"))
        assert isinstance(ivf, IvfIndex)
        for nprobe in sorted({DEFAULT_NPROBE, *map(int, args.nprobes.split(","))}):
            ivf.nprobe = nprobe
            name = f"ivf nlist={ivf.nlist} nprobe={nprobe}"
            rows.append(row(size, name, ivf, build_s, rss, queries, truth, False))
        del ivf
    return rows, stats


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| N | index | build s | index MB | RSS delta MB | p50 ms | p99 ms | recall@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["index"] + (" **(build_index)**" if r["picked_by_build_index"] else "")
        lines.append(
            f"| {r['size']:,} | {name} | {r['build_s']:.1f} | {r['index_bytes'] / 2**20:.0f} | "
            f"{r['rss_delta_bytes'] / 2**20:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['recall_at_10']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--centers", type=Path, help=".npy of real face embeddings (m, 128)")
    ap.add_argument("--fit", type=Path, help="LFW embeddings .npz (vectors, identity): sample "
                    "from a Gaussian model fitted to real face embeddings")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--nprobes", default="64,128,256", help="extra IVF nprobe values to measure")
    ap.add_argument("--efs", default="64,256", help="extra HNSW efSearch values to measure")
    ap.add_argument("--nlists", default="auto", help="IVF nlist values ('auto' = build_index's "
                    "choice; 'none' = no IVF rows)")
    ap.add_argument("--merge", action="store_true", help="keep the rows of other sizes already in "
                    "--out (e.g. add a 10M row to an earlier run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/results/search.json"))
    args = ap.parse_args(argv)

    real = None
    if args.fit is not None:
        fit_real(args.fit)
    if args.centers is not None:
        real = np.load(args.centers).astype(np.float32)
        if real.ndim != 2 or real.shape[1] != DIM:
            ap.error(f"--centers must hold an (m, {DIM}) array, got {real.shape}")
        real = normalise(real)
    faiss = faiss_module()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    rows: list[dict[str, Any]] = []
    data: dict[str, Any] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        size_rows, stats = bench_size(size, args, real)
        rows += size_rows
        data[str(size)] = stats
    command = " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])
    if args.merge and args.out.exists():
        old = json.loads(args.out.read_text())
        done = set(data)
        rows = [r for r in old["results"] if str(r["size"]) not in done] + rows
        rows.sort(key=lambda r: r["size"])
        data = {k: v for k, v in old["data"]["cosines"].items() if k not in done} | data
        command = f"{old['command']}; then {command}"
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": command,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "faiss": faiss.__version__,
                    "numpy": np.__version__,
                    "platform": platform.platform(),
                },
                "data": {
                    "dim": DIM,
                    "per_identity": PER_IDENTITY,
                    "sigma": SIGMA,
                    "tau": TAU,
                    "centers": (f"fitted to {args.fit}" if args.fit else
                                str(args.centers) if args.centers else "random"),
                    "cosines": data,
                },
                "results": rows,
                "markdown": table(rows),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
