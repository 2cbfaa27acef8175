"""HNSW parameters by index size: today's fixed default against the size rule
(``faceledger/data/index_params.json``), side by side in one run (never run by the tests).

    .venv/bin/python bench/index_scale_bench.py --sizes 1000000 [--efcs 64,128] [--efs 64,128,256]
        [--fit bench/results/lfw_embeddings.npz] [--queries 500] [--out bench/results/index_scale.json]

Galleries come from ``bench/search_bench.py`` (N/10 identities x 10 samples, generated in seeded
chunks). With ``--fit`` they follow a Gaussian model fitted to real embeddings; without it, a
"cone" model with the same shape as dlib's: a shared mean direction, identity offsets and
within-identity noise with decaying spectra (``i ** -SPECTRUM``), scaled so that two samples of
one identity have cosine ~0.953 and of two identities ~0.821 (what the LFW fit measured).
Recall@10 is against exact search; latency is one query at a time on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import search_bench as sb
from benchinfo import command_line, machine

from faceledger.gallery.index import FlatIndex, HnswIndex
from faceledger.gallery.index.faiss_common import faiss_module
from faceledger.gallery.index.faiss_hnsw import DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH
from faceledger.gallery.index.params import ef_search_for, hnsw_params

SAME_COS, DIFF_COS = 0.953, 0.821
SPECTRUM = 0.7


def cone_fit(seed: int) -> None:
    """Set ``search_bench.FIT`` to the synthetic face-shaped model described above."""
    rng = np.random.default_rng([seed, 77])
    d = sb.DIM
    mu = rng.standard_normal(d).astype(np.float32)
    mu /= np.linalg.norm(mu)
    total = 1 / DIFF_COS - 1  # trace of between + within covariance, |mu| = 1
    tr_b = SAME_COS / DIFF_COS - 1
    shape = np.arange(1, d + 1, dtype=np.float64) ** -SPECTRUM
    rot_b, _ = np.linalg.qr(rng.standard_normal((d, d)))
    rot_w, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lb = rot_b * np.sqrt(shape * tr_b / shape.sum())
    lw = rot_w * np.sqrt(shape * (total - tr_b) / shape.sum())
    sb.FIT = (mu, lb.astype(np.float32), lw.astype(np.float32))


def use_data(fit: Path | None, seed: int) -> str:
    """Generate galleries fitted to ``fit`` (an LFW embeddings .npz), else from the cone model;
    says which."""
    if fit is not None:
        sb.fit_real(fit)
        return f"fitted to {fit}"
    cone_fit(seed)
    return f"cone model (same {SAME_COS}, different {DIFF_COS}, spectrum i^-{SPECTRUM})"


def bench_size(size: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    stats = sb.cosine_stats(size, args.seed, None)
    queries = sb.make_queries(size, args, None)
    print(f"N={size}: {json.dumps({k: round(v, 3) for k, v in stats.items()})}", flush=True)
    exact, _, _ = sb.timed_build(lambda: sb.streamed(FlatIndex(sb.MODEL, sb.DIM), size, args, None, "flat"))
    _, truth = exact.search(queries, sb.K)
    del exact
    rule = hnsw_params(size)
    rule_ef = ef_search_for(size, DEFAULT_EF_SEARCH)
    rows: list[dict[str, Any]] = []
    for efc in sorted({DEFAULT_EF_CONSTRUCTION, rule.ef_construction, *map(int, args.efcs.split(","))}):
        graph, build_s, rss = sb.timed_build(lambda efc=efc: sb.streamed(
            HnswIndex(sb.MODEL, sb.DIM, ef_construction=efc), size, args, None, f"hnsw efc={efc}"))
        assert isinstance(graph, HnswIndex)
        for ef in sorted({DEFAULT_EF_SEARCH, rule_ef, *map(int, args.efs.split(","))}):
            graph.ef_search = ef
            today = efc == DEFAULT_EF_CONSTRUCTION and ef == DEFAULT_EF_SEARCH
            new = efc == rule.ef_construction and ef == rule_ef
            tag = " ".join(t for t, on in (("(today)", today), ("(size rule)", new)) if on)
            r = sb.row(size, f"hnsw M=32 efC={efc} efSearch={ef} {tag}".strip(), graph, build_s, rss,
                       queries, truth, new)
            rows.append(r | {"cosines": stats, "today": today, "size_rule": new})
        del graph
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| N | index | build s | index MB | p50 ms | p99 ms | recall@10 |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['size']:,} | {r['index']} | {r['build_s']:.0f} | {r['index_bytes'] / 2**20:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['recall_at_10']:.4f} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--fit", type=Path, help="LFW embeddings .npz (vectors, identity); default: cone model")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--efs", default="64,128,256", help="efSearch values measured on every graph")
    ap.add_argument("--efcs", default="64,128", help="efConstruction values to build")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/results/index_scale.json"))
    args = ap.parse_args(argv)
    data = use_data(args.fit, args.seed)
    faiss_module().omp_set_num_threads(os.cpu_count() or 1)
    rows = [r for size in map(int, args.sizes.split(",")) for r in bench_size(size, args)]
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": command_line(argv), "machine": machine(faiss=faiss_module().__version__),
        "data": data, "results": rows, "markdown": table(rows)}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
