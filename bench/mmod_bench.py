"""MMOD CNN on ONNX Runtime vs dlib's CNN and HOG detectors: detection rate and ms per image.

    python bench/mmod_bench.py --lfw ../shared/facedata/lfw --n 120 --out bench/results

Reads the first N LFW images (sorted paths) and the test photos (tests/photos.py); writes
mmod.json into --out and prints a table. Counts images where the ONNX boxes equal dlib's CNN
boxes exactly. Never run by the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def lfw_images(lfw: Path, n: int) -> list[tuple[str, np.ndarray]]:
    paths = sorted(lfw.glob("*/*.jpg"))[:n]
    return [(str(p.relative_to(lfw)), np.asarray(Image.open(p).convert("RGB"))) for p in paths]


def test_photos() -> list[tuple[str, np.ndarray]]:
    from tests import photos

    face, grace, collage = photos.astronaut_face(), photos.grace_hopper(), photos.collage()
    small = collage.resize((collage.width // 2, collage.height // 2))
    rotated = grace.resize((256, 300)).rotate(20, expand=True, fillcolor=(128, 128, 128))
    items = {"astronaut": photos.astronaut(), "grace_hopper": grace, "collage": collage,
             "small": small, "grayscale_as_rgb": face.convert("L"), "rotated": rotated}
    return [(k, np.asarray(v.convert("RGB"))) for k, v in items.items()]


def detectors(cache: Path, threads: int) -> dict[str, Any]:
    import dlib

    from faceledger.faces.models.onnx_mmod import OnnxMmodDetector, default_weights_path

    hog = dlib.get_frontal_face_detector()
    cnn = dlib.cnn_face_detection_model_v1(str(default_weights_path()))
    onnx = {up: OnnxMmodDetector(cache, upsample=up, threads=threads) for up in (0, 1)}

    def rects(dets: Any) -> list[tuple[int, int, int, int]]:
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in dets]

    return {
        "hog_up0": lambda a: rects(hog(a, 0)),
        "hog_up1": lambda a: rects(hog(a, 1)),
        "dlib_cnn_up0": lambda a: rects(d.rect for d in cnn(a, 0)),
        "dlib_cnn_up1": lambda a: rects(d.rect for d in cnn(a, 1)),
        "onnx_cnn_up0": lambda a: [r for r, _ in onnx[0].raw_detections(a)],
        "onnx_cnn_up1": lambda a: [r for r, _ in onnx[1].raw_detections(a)],
    }


def run_set(images: list[tuple[str, np.ndarray]], dets: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"images": len(images), "detectors": {}}
    boxes: dict[str, list[Any]] = {}
    for name, fn in dets.items():
        fn(images[0][1])  # warm-up
        t0 = time.perf_counter()
        boxes[name] = [fn(a) for _, a in images]
        ms = (time.perf_counter() - t0) * 1000 / len(images)
        found = sum(1 for b in boxes[name] if b)
        out["detectors"][name] = {"ms_per_image": round(ms, 1), "images_with_face": found,
                                  "detection_rate": round(found / len(images), 4)}
        print(f"  {name:14s} {ms:8.1f} ms/image  faces found in {found}/{len(images)}", flush=True)
    for up in (0, 1):
        same = sum(a == b for a, b in zip(boxes[f"onnx_cnn_up{up}"], boxes[f"dlib_cnn_up{up}"],
                                          strict=True))
        out[f"boxes_equal_onnx_vs_dlib_up{up}"] = same
        print(f"  boxes equal ONNX vs dlib (upsample {up}): {same}/{len(images)}")
    out["per_image_misses"] = {n: [k for (k, _), b in zip(images, boxes[n], strict=True) if not b]
                               for n in boxes}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    args = ap.parse_args()
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as cache:
        dets = detectors(Path(cache), args.threads)
        result: dict[str, Any] = {"onnxruntime": ort.__version__, "threads": args.threads,
                                  "providers": ort.get_available_providers()}
        print(f"LFW, first {args.n} images")
        result["lfw"] = run_set(lfw_images(args.lfw, args.n), dets)
        print("test photos")
        result["test_photos"] = run_set(test_photos(), dets)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mmod.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out / 'mmod.json'}")


if __name__ == "__main__":
    main()
