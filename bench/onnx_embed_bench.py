"""Embedding speed and agreement: dlib-bin's ResNet vs the same network on ONNX Runtime.

    python bench/onnx_embed_bench.py --lfw ../shared/facedata/lfw --limit 300 --out results.json

Chips come from the first LIMIT LFW images (sorted paths; dlib HOG, upsample 1, the largest face,
dlib's 5-point alignment, as the pipeline does). Each runtime embeds every chip; ms/face is the
best of --repeats passes. Agreement compares the raw descriptors (max euclidean difference, max
absolute difference) and the L2-normalised ones (min cosine), and counts same/different decisions
that change over all pairs at each threshold of the packaged calibration.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faceledger.faces.embed import normalise
from faceledger.faces.models.dlib_backend import DlibAligner, DlibDetector, DlibEmbedder
from faceledger.faces.models.onnx_resnet import OnnxResnetEmbedder

CALIBRATION = Path(__file__).resolve().parents[1] / "faceledger" / "data" / "calibration.json"


def lfw_chips(lfw: Path, limit: int) -> tuple[np.ndarray, list[str]]:
    detector, aligner = DlibDetector("hog", 1, 0.0), DlibAligner()
    chips, names = [], []
    for path in sorted(lfw.glob("*/*.jpg"))[:limit]:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        dets = detector.detect(pixels)
        if not dets:
            continue
        best = max(dets, key=lambda d: d.box.width * d.box.height)
        chips.append(aligner.align(pixels, best.box).chip)
        names.append(path.parent.name)
    return np.stack(chips), names


def timed(fn: Any, repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, np.asarray(out, dtype=np.float32)


def run_dlib(chips: np.ndarray, batch: int) -> np.ndarray:
    net = DlibEmbedder()._net
    out = []
    for i in range(0, len(chips), batch):
        part = [np.ascontiguousarray(c) for c in chips[i : i + batch]]
        out += [np.asarray(v) for v in net.compute_face_descriptor(part)]
    return np.array(out, dtype=np.float32)


def run_onnx(embedder: OnnxResnetEmbedder, chips: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([embedder.descriptors(chips[i : i + batch])
                           for i in range(0, len(chips), batch)])


def agreement(ours: np.ndarray, theirs: np.ndarray, names: list[str]) -> dict[str, Any]:
    a, b = normalise(ours), normalise(theirs)
    calib = json.loads(CALIBRATION.read_text())["calibrations"][0]
    thresholds = sorted({calib["threshold"], *(r["threshold"] for r in calib["details"]["table"])})
    pairs = np.array(list(itertools.combinations(range(len(a)), 2)))
    sa = (a[pairs[:, 0]] * a[pairs[:, 1]]).sum(axis=1)
    sb = (b[pairs[:, 0]] * b[pairs[:, 1]]).sum(axis=1)
    mated = np.array([names[i] == names[j] for i, j in pairs])
    changed = {str(t): int(((sa >= t) != (sb >= t)).sum()) for t in thresholds}
    return {"faces": len(a), "pairs": len(pairs), "mated_pairs": int(mated.sum()),
            "thresholds": thresholds, "decisions": len(pairs) * len(thresholds),
            "decisions_changed": sum(changed.values()), "changed_by_threshold": changed,
            "max_euclidean": float(np.linalg.norm(ours - theirs, axis=1).max()),
            "max_abs_diff": float(np.abs(ours - theirs).max()),
            "min_cosine": float((a * b).sum(axis=1).min()),
            "max_score_diff": float(np.abs(sa - sb).max()),
            "raw_norms": [float(np.linalg.norm(ours, axis=1).min()),
                          float(np.linalg.norm(ours, axis=1).max())]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=300, help="first N LFW images")
    ap.add_argument("--batches", default="1,32", help="ONNX Runtime batch sizes")
    ap.add_argument("--threads", default="1", help="ONNX Runtime thread counts")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    chips, names = lfw_chips(args.lfw, args.limit)
    rows: list[dict[str, Any]] = []
    dlib_s, dlib_out = timed(lambda: run_dlib(chips, 1), args.repeats)
    rows.append({"runtime": "dlib-bin", "threads": 1, "batch": 1,
                 "ms_per_face": round(1000 * dlib_s / len(chips), 2), "speedup_vs_dlib": 1.0})
    dlib32_s, _ = timed(lambda: run_dlib(chips, 32), 1)
    rows.append({"runtime": "dlib-bin", "threads": 1, "batch": 32,
                 "ms_per_face": round(1000 * dlib32_s / len(chips), 2),
                 "speedup_vs_dlib": round(dlib_s / dlib32_s, 1)})
    onnx_out = None
    for threads in [int(t) for t in args.threads.split(",")]:
        embedder = OnnxResnetEmbedder(None, threads)
        run_onnx(embedder, chips[:4], 4)  # warm-up
        for batch in [int(b) for b in args.batches.split(",")]:
            s, out = timed(lambda e=embedder, b=batch: run_onnx(e, chips, b), args.repeats)
            onnx_out = out if onnx_out is None else onnx_out
            rows.append({"runtime": "onnxruntime " + ",".join(embedder.active_providers),
                         "threads": threads, "batch": batch,
                         "ms_per_face": round(1000 * s / len(chips), 2),
                         "speedup_vs_dlib": round(dlib_s / s, 1)})
    assert onnx_out is not None
    result = {"dataset": f"LFW, first {args.limit} images ({len(chips)} with a face)",
              "rows": rows, "agreement": agreement(onnx_out, dlib_out, names)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
