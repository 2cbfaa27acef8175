"""Ingest throughput: the local engine (a process pool) vs the ray engine (actors on a local Ray),
same LFW images, same 2 cores (issue 15 part 3: the distributed path's overhead).

Each engine ingests the same files into its own fresh data home, timed from the start of the
ingest to its end (models loaded, Ray started and stopped included), so the ratio is what a user
of ``--engine ray`` pays on one machine:

    python bench/ray_ingest_bench.py --lfw ../shared/facedata/lfw --limit 200 --out bench/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any


def lfw_subset(lfw: Path, limit: int) -> list[Path]:
    files = sorted(lfw.glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"no images under {lfw}")
    return files[:limit]


def run_engine(files: list[Path], engine: str, workers: int) -> dict[str, Any]:
    from faceledger.core import Faceledger
    from faceledger.gallery.collections import add_collection
    from faceledger.gallery.ingest import Ingest
    from faceledger.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for i, f in enumerate(files):  # same bytes, flat folder of links
            (src / f"{i:06d}_{f.name}").symlink_to(f.resolve())
        app = Faceledger(Settings(home=Path(tmp) / "home", workers=workers))
        _, token = app.initialise("bench")
        admin = app.authenticate(token)
        with app.db.write() as s:
            add_collection(s, "bench", "benchmark", "", actor=admin)
        t0 = time.perf_counter()
        summary = Ingest(app, admin, engine=engine).run([src], "bench", workers=workers)
        dt = time.perf_counter() - t0
        app.close()
    return {"engine": engine, "workers": workers, "images": summary.added,
            "faces": summary.faces, "rejected": summary.rejected, "seconds": round(dt, 2),
            "images_per_s": round(len(files) / dt, 2), "faces_per_s": round(summary.faces / dt, 2)}


def report(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = ["# Ingest: local engine vs Ray (same cores)", "",
             f"{meta['images']} LFW images, {meta['workers']} workers, {meta['cpus']} CPUs visible, "
             f"Python {meta['python']}, Ray {meta['ray']}.", "",
             "| engine | images | faces | seconds | images/s | faces/s |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['engine']} | {r['images']} | {r['faces']} | {r['seconds']} | "
              f"{r['images_per_s']} | {r['faces_per_s']} |" for r in results]
    local, ray = results[0], results[1]
    lines += ["", f"Ray / local throughput: {meta['ratio']} (Ray's overhead: "
              f"{round((1 - meta['ratio']) * 100, 1)} % of the local engine's images/s; "
              "start-up of a local Ray and the actors' model loading included).",
              f"Same faces found: {local['faces'] == ray['faces']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args()
    import ray

    files = lfw_subset(args.lfw, args.limit)
    results = [run_engine(files, "local", args.workers), run_engine(files, "ray", args.workers)]
    ratio = round(results[1]["images_per_s"] / results[0]["images_per_s"], 3)
    meta = {"images": len(files), "workers": args.workers, "cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "ray": ray.__version__, "ratio": ratio}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray_ingest.json").write_text(json.dumps({"meta": meta, "results": results},
                                                         indent=2) + "\n")
    text = report(results, meta)
    (args.out / "ray_ingest.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
