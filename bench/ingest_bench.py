"""Ingest throughput: faceledger vs the face_recognition package, same images, same cores.

Both use dlib's HOG detector (upsample 1) and the same ResNet embedder; face_recognition uses its
default 5-point "small" landmark model for encodings. Run side by side in one process tree:

    python bench/ingest_bench.py --lfw ../shared/facedata/lfw --limit 2000 --out bench/results
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
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


def _fr_one(path: str) -> int:
    import face_recognition

    img = face_recognition.load_image_file(path)
    locs = face_recognition.face_locations(img, number_of_times_to_upsample=1, model="hog")
    return len(face_recognition.face_encodings(img, locs))


def run_face_recognition(files: list[Path], processes: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    if processes == 1:
        faces = sum(_fr_one(str(f)) for f in files)
    else:
        with mp.get_context("spawn").Pool(processes) as pool:
            faces = sum(pool.imap_unordered(_fr_one, [str(f) for f in files], chunksize=8))
    dt = time.perf_counter() - t0
    return {"name": f"face_recognition 1.3.0 ({processes} process{'es' if processes > 1 else ''})",
            "images": len(files), "faces": faces, "seconds": round(dt, 2),
            "images_per_s": round(len(files) / dt, 2), "faces_per_s": round(faces / dt, 2)}


def run_faceledger(files: list[Path], workers: int) -> dict[str, Any]:
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
        summary = Ingest(app, admin).run([src], "bench", workers=workers)
        dt = time.perf_counter() - t0
        app.close()
        home = Path(tmp) / "home"
        db_bytes = sum(p.stat().st_size for p in home.glob("faceledger.db*"))
        thumbs = sum(p.stat().st_size for p in (home / "thumbs").rglob("*.jpg"))
    return {"name": f"faceledger ingest ({workers} workers)", "images": summary.added,
            "faces": summary.faces, "rejected": summary.rejected, "seconds": round(dt, 2),
            "images_per_s": round(len(files) / dt, 2), "faces_per_s": round(summary.faces / dt, 2),
            "db_bytes_per_face": round(db_bytes / max(summary.faces, 1)),
            "thumbnail_bytes_per_face": round(thumbs / max(summary.faces, 1))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args()
    files = lfw_subset(args.lfw, args.limit)
    rows = [
        run_faceledger(files, args.workers),
        run_face_recognition(files, 1),
        run_face_recognition(files, args.workers),
    ]
    base = rows[1]["images_per_s"]
    for r in rows:
        r["speedup_vs_face_recognition_1proc"] = round(r["images_per_s"] / base, 2)
    report = {"benchmark": "ingest", "dataset": f"LFW first {len(files)} images (sorted paths)",
              "cores": len(os.sched_getaffinity(0)), "machine": platform.platform(),
              "cpu": platform.processor() or platform.machine(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(report, indent=2))
    print("| system | images | faces | s | images/s | faces/s | x FR(1 proc) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['images']} | {r['faces']} | {r['seconds']} | "
              f"{r['images_per_s']} | {r['faces_per_s']} | {r['speedup_vs_face_recognition_1proc']} |")


if __name__ == "__main__":
    main()
