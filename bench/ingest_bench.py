"""Ingest throughput: faceledger vs the face_recognition package, same images, same cores.

Both use dlib's HOG detector and the same ResNet embedder; face_recognition at upsample 1,
faceledger at its settings (FACELEDGER_UPSAMPLE, default auto: 0, then 1 where 0 finds no face;
``--upsample auto,1`` runs faceledger once per value in the same run). face_recognition uses its
default 5-point "small" landmark model for encodings. Run side by side in one process tree:

    python bench/ingest_bench.py --lfw ../shared/facedata/lfw --limit 2000 --out bench/results
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any


def lfw_subset(lfw: Path, limit: int) -> list[Path]:
    files = sorted(lfw.glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"no images under {lfw}")
    return files[:limit]


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the worker pools, joined
    at the end of each run): what a run cost, whatever else shares the cores."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def _cpu_fields(images: int, cpu: float) -> dict[str, Any]:
    return {"cpu_s": round(cpu, 2), "images_per_cpu_s": round(images / cpu, 2)}


def _fr_one(path: str) -> int:
    import face_recognition

    img = face_recognition.load_image_file(path)
    locs = face_recognition.face_locations(img, number_of_times_to_upsample=1, model="hog")
    return len(face_recognition.face_encodings(img, locs))


def run_face_recognition(files: list[Path], processes: int) -> dict[str, Any]:
    c0, t0 = cpu_seconds(), time.perf_counter()
    if processes == 1:
        faces = sum(_fr_one(str(f)) for f in files)
    else:
        with mp.get_context("spawn").Pool(processes) as pool:
            faces = sum(pool.imap_unordered(_fr_one, [str(f) for f in files], chunksize=8))
    dt, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {"name": f"face_recognition 1.3.0 ({processes} process{'es' if processes > 1 else ''})",
            "images": len(files), "faces": faces, "seconds": round(dt, 2),
            "images_per_s": round(len(files) / dt, 2), "faces_per_s": round(faces / dt, 2),
            **_cpu_fields(len(files), cpu)}


def run_faceledger(files: list[Path], workers: int, upsample: str = "") -> dict[str, Any]:
    from faceledger.core import Faceledger
    from faceledger.gallery.collections import add_collection
    from faceledger.gallery.ingest import Ingest
    from faceledger.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for i, f in enumerate(files):  # same bytes, flat folder of links
            (src / f"{i:06d}_{f.name}").symlink_to(f.resolve())
        extra: dict[str, Any] = {"upsample": upsample} if upsample else {}
        settings = Settings(home=Path(tmp) / "home", workers=workers, **extra)
        app = Faceledger(settings)
        _, token = app.initialise("bench")
        admin = app.authenticate(token)
        with app.db.write() as s:
            add_collection(s, "bench", "benchmark", "", actor=admin)
        c0, t0 = cpu_seconds(), time.perf_counter()
        summary = Ingest(app, admin).run([src], "bench", workers=workers)
        dt, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        app.close()
        home = Path(tmp) / "home"
        db_bytes = sum(p.stat().st_size for p in home.glob("faceledger.db*"))
        thumbs = sum(p.stat().st_size for p in (home / "thumbs").rglob("*.jpg"))
    return {"name": f"faceledger ingest ({workers} workers, upsample {settings.upsample})",
            "images": summary.added,
            "faces": summary.faces, "rejected": summary.rejected, "seconds": round(dt, 2),
            "images_per_s": round(len(files) / dt, 2), "faces_per_s": round(summary.faces / dt, 2),
            **_cpu_fields(len(files), cpu),
            "db_bytes_per_face": round(db_bytes / max(summary.faces, 1)),
            "thumbnail_bytes_per_face": round(thumbs / max(summary.faces, 1))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--upsample", default="", help="comma-separated faceledger upsample values "
                    "(e.g. auto,1), each a row; default: the settings'")
    ap.add_argument("--no-single", action="store_true",
                    help="skip face_recognition with 1 process (saves the longest row)")
    args = ap.parse_args()
    files = lfw_subset(args.lfw, args.limit)
    rows = [run_faceledger(files, args.workers, up.strip())
            for up in (args.upsample.split(",") if args.upsample else [""])]
    fr_equal = run_face_recognition(files, args.workers)
    fr_one = fr_equal if args.no_single else run_face_recognition(files, 1)
    rows += [fr_equal] if args.no_single else [fr_one, fr_equal]
    for r in rows:
        r["speedup_vs_face_recognition_1proc"] = (
            None if args.no_single else round(r["images_per_s"] / fr_one["images_per_s"], 2))
        r["speedup_vs_face_recognition_equal_processes"] = round(
            r["images_per_s"] / fr_equal["images_per_s"], 2)
        r["cpu_efficiency_vs_face_recognition"] = round(
            r["images_per_cpu_s"] / fr_equal["images_per_cpu_s"], 2)
    report = {"benchmark": "ingest", "dataset": f"LFW first {len(files)} images (sorted paths)",
              "cores": len(os.sched_getaffinity(0)), "machine": platform.platform(),
              "cpu": platform.processor() or platform.machine(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(report, indent=2))
    print(f"| system | images | faces | s | images/s | faces/s | x FR(1 proc) | "
          f"x FR({args.workers} processes) | CPU s | images/CPU s | x FR images/CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['images']} | {r['faces']} | {r['seconds']} | "
              f"{r['images_per_s']} | {r['faces_per_s']} | {r['speedup_vs_face_recognition_1proc']} "
              f"| {r['speedup_vs_face_recognition_equal_processes']} | {r['cpu_s']} | "
              f"{r['images_per_cpu_s']} | {r['cpu_efficiency_vs_face_recognition']} |")


if __name__ == "__main__":
    main()
