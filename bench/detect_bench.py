"""Faces the detector misses: padding, the CNN fallback and HOG upsampling, measured.

    python bench/detect_bench.py --lfw ../shared/facedata/lfw --n 300 --out bench/results

For each detector configuration (HOG upsample 0 / 1 / adaptive (1 below 300 px) / auto (0, then
1 where 0 finds none: FACELEDGER_UPSAMPLE=auto), HOG + 16 px padding, HOG + padding + the MMOD
CNN fallback, the MMOD CNN on ONNX Runtime at upsample 0 / 1) runs the whole
pipeline (detect, align, embed with the ONNX embedder, one thread) on the first N LFW images and on
variants of the test photos (tests/photos.py): 92x112 grayscale crops whose face touches the
frame, harsh one-sided light, rotations, grayscale and small faces. Reports the share of images
with a face found (LFW: a face whose centre lies in the central 100 px, where LFW's subject is)
and CPU ms per image (this thread's CPU time, detection and the rest apart), wall ms and faces
found per CPU second; writes detect.json and detect.md into --out. ``--interleave`` runs every
config on each image in turn (fairer when other processes share the cores).
Never run by the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceledger.faces.decode import DecodedImage  # noqa: E402
from faceledger.faces.detect import UPSAMPLE_AUTO, BySize, Detection  # noqa: E402
from faceledger.faces.models.base import ModelOptions, load_model  # noqa: E402
from faceledger.faces.pipeline import FacePipeline  # noqa: E402

Item = tuple[str, str, np.ndarray]  # (set, name, RGB pixels)


# ------------------------------------------------------------------------------- the images


def lfw_images(lfw: Path, n: int) -> list[Item]:
    paths = sorted(lfw.glob("*/*.jpg"))[:n]
    return [("lfw", str(p.relative_to(lfw)), np.asarray(Image.open(p).convert("RGB"))) for p in paths]


def border_crop(img: Image.Image, box: tuple[int, int, int, int], frac: float) -> Image.Image:
    """A 92x112 grayscale crop whose height is ``frac`` of the face box: forehead and chin touch
    the frame (the layout of the AT&T / ORL face set)."""
    cx = (box[0] + box[2]) / 2
    hgt = (box[3] - box[1]) * frac
    wid = hgt * 92 / 112
    cy = (box[1] + box[3]) / 2 + 0.05 * hgt
    crop = img.crop((int(cx - wid / 2), int(cy - hgt / 2), int(cx + wid / 2), int(cy + hgt / 2)))
    return crop.convert("L").resize((92, 112), Image.Resampling.LANCZOS)


def side_light(img: Image.Image, floor: float, soft: float) -> Image.Image:
    """One side of the picture darkened to ``floor`` of its level, the edge ``soft`` px wide."""
    a = np.asarray(img.convert("RGB")).astype(np.float32)
    x = np.arange(a.shape[1])
    gain = floor + (1 - floor) / (1 + np.exp(-(x - a.shape[1] / 2) / soft))
    return Image.fromarray(np.clip(a * gain[None, :, None], 0, 255).astype(np.uint8))


def photo_variants() -> list[Item]:
    from tests import photos

    # HOG's boxes on the two photos (upsample 1), used to frame the border crops
    sources = {"astronaut": (photos.astronaut_face(), (116, 76, 205, 166)),
               "grace": (photos.grace_hopper().resize((256, 300)), (79, 68, 187, 175))}
    out: list[tuple[str, str, Image.Image]] = []
    for name, (img, box) in sources.items():
        for mirror in (False, True):
            src = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirror else img
            b = (src.width - box[2], box[1], src.width - box[0], box[3]) if mirror else box
            m = "-mirror" if mirror else ""
            out += [("border", f"{name}{m}-h{f}", border_crop(src, b, f))
                    for f in (0.8, 0.85, 0.9, 0.95, 1.0)]
            out += [("light", f"{name}{m}-{k}-{s}", side_light(src, k, s))
                    for k in (0.03, 0.06, 0.1) for s in (3, 8)]
        out += [("rotated", f"{name}-{a}", img.rotate(a, expand=True, fillcolor=(128, 128, 128)))
                for a in (-50, -40, -30, 30, 40, 50)]
        out += [("grayscale", f"{name}-{s}", img.convert("L").resize(
            (int(img.width * s), int(img.height * s)))) for s in (1.0, 0.6, 0.4)]
        out += [("small", f"{name}-{s}", img.resize((int(img.width * s), int(img.height * s))))
                for s in (0.5, 0.35, 0.25)]
        out += [("blur", f"{name}-{r}", img.filter(ImageFilter.GaussianBlur(r))) for r in (3, 4, 5)]
    items = [(k, n, np.asarray(i.convert("RGB"))) for k, n, i in out]
    blank = np.full((300, 300, 3), 128, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    return [*items, ("no-face", "blank", blank), ("no-face", "noise", noise)]


# ------------------------------------------------------------------------------- the configs


@dataclass
class Bundle:  # a FaceModel with another detector
    capabilities: Any
    detector: Any
    aligner: Any
    embedder: Any
    fallback_detector: Any = None


def make_pipe(cache: str, kind: str, up: int | str, pad: int, fallback: bool) -> FacePipeline:
    upsample = {"adaptive": 1, "auto": UPSAMPLE_AUTO}.get(str(up), up)
    opts = ModelOptions(kind, int(upsample), 0.0, 0, onnx_threads=1,
                        fallback_detector="cnn" if fallback else None, cache_dir=cache)
    model: Any = load_model("dlib-resnet-v1", opts)
    if up == "adaptive":  # upsample once only for images under 300 px on the short side
        large = load_model("dlib-resnet-v1", ModelOptions(kind, 0, 0.0, 0, cache_dir=cache))
        model = Bundle(model.capabilities, BySize(model.detector, large.detector, 300),
                       model.aligner, model.embedder, getattr(model, "fallback_detector", None))
    return FacePipeline(model, max_pixels=40_000_000, max_bytes=None, max_faces=64,
                        thumbnail_size=112, detect_pixels=8_000_000, detect_pad=pad,
                        fallback_pixels=2_000_000)


CONFIGS: dict[str, tuple[str, int | str, int, bool]] = {
    "hog up0": ("hog", 0, 0, False),
    "hog up1": ("hog", 1, 0, False),
    "hog adaptive": ("hog", "adaptive", 0, False),
    "hog auto": ("hog", "auto", 0, False),
    "hog up1 pad8": ("hog", 1, 8, False),
    "hog up1 pad16": ("hog", 1, 16, False),
    "hog up1 pad24": ("hog", 1, 24, False),
    "hog up0 pad16 +fallback": ("hog", 0, 16, True),
    "hog up1 pad16 +fallback": ("hog", 1, 16, True),
    "hog auto pad16 +fallback": ("hog", "auto", 16, True),
    "hog adaptive pad16 +fallback": ("hog", "adaptive", 16, True),
    "cnn-onnx up0": ("cnn", 0, 0, False),
    "cnn-onnx up1": ("cnn", 1, 0, False),
}


def _hit(kind: str, pixels: np.ndarray, dets: list[Detection]) -> bool:
    if kind == "no-face":
        return not dets
    if kind != "lfw":
        return bool(dets)
    h, w = pixels.shape[:2]
    return any(abs((d.box.left + d.box.right) / 2 - w / 2) < 50
               and abs((d.box.top + d.box.bottom) / 2 - h / 2) < 50 for d in dets)


def measure(pipe: FacePipeline, item: Item, sets: dict[str, dict[str, Any]]) -> None:
    """One image through ``pipe``: wall time and this thread's CPU time (dlib and ONNX Runtime
    with one thread work in the calling thread, so CPU time is what the image cost even when
    other processes share the cores)."""
    kind, name, pixels = item
    img = DecodedImage(pixels=pixels, format="PNG", width=pixels.shape[1], height=pixels.shape[0])
    c0, t0 = time.thread_time(), time.perf_counter()
    dets = pipe.detect(img)
    c1, t1 = time.thread_time(), time.perf_counter()
    pipe.embed_detections(img, dets, thumbnails=False)
    c2, t2 = time.thread_time(), time.perf_counter()
    s = sets.setdefault(kind, {"n": 0, "hits": 0, "detect_s": 0.0, "rest_s": 0.0,
                               "detect_cpu_s": 0.0, "rest_cpu_s": 0.0, "missed": []})
    ok = _hit(kind, pixels, dets)
    s["n"] += 1
    s["hits"] += ok
    s["detect_s"] += t1 - t0
    s["rest_s"] += t2 - t1
    s["detect_cpu_s"] += c1 - c0
    s["rest_cpu_s"] += c2 - c1
    if not ok:
        s["missed"].append(name)


def run_config(pipe: FacePipeline, items: list[Item]) -> dict[str, dict[str, Any]]:
    sets: dict[str, dict[str, Any]] = {}
    for item in items:
        measure(pipe, item, sets)
    return sets


def run_interleaved(pipes: dict[str, FacePipeline], items: list[Item]
                    ) -> dict[str, dict[str, dict[str, Any]]]:
    """Every config on each image in turn, so load from other processes falls on all alike."""
    results: dict[str, dict[str, dict[str, Any]]] = {cfg: {} for cfg in pipes}
    for item in items:
        for cfg, pipe in pipes.items():
            measure(pipe, item, results[cfg])
    return results


def _ms(s: dict[str, Any], key: str) -> float:
    return 1000 * s[key] / s["n"]


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Found and CPU ms per image (detect + rest) per set; wall ms and found per CPU second
    over LFW and over the variants."""
    kinds = list(next(iter(results.values())))
    head = "| config | " + " | ".join(
        f"{k} found | {k} CPU ms (detect+rest)" for k in kinds) + (
        " | variants found | LFW wall ms | LFW found/CPU s | variants found/CPU s |")
    lines = [head, "|" + "---|" * (2 * len(kinds) + 5)]
    for cfg, sets in results.items():
        cells = []
        for k in kinds:
            s = sets[k]
            cells += [f"{s['hits']}/{s['n']}",
                      f"{_ms(s, 'detect_cpu_s') + _ms(s, 'rest_cpu_s'):.1f} "
                      f"({_ms(s, 'detect_cpu_s'):.1f}+{_ms(s, 'rest_cpu_s'):.1f})"]
        var = [s for k, s in sets.items() if k not in ("lfw", "no-face")]
        hits, n = sum(s["hits"] for s in var), sum(s["n"] for s in var)
        cpu = sum(s["detect_cpu_s"] + s["rest_cpu_s"] for s in var)
        lfw = sets.get("lfw")
        cells.append(f"{hits}/{n}")
        cells.append(f"{_ms(lfw, 'detect_s') + _ms(lfw, 'rest_s'):.1f}" if lfw else "-")
        cells.append(f"{lfw['hits'] / (lfw['detect_cpu_s'] + lfw['rest_cpu_s']):.1f}"
                     if lfw else "-")
        cells.append(f"{hits / cpu:.1f}" if cpu else "-")
        lines.append(f"| {cfg} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lfw", type=Path, help="LFW folder (optional: test-photo variants only)")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--configs", default="", help="comma-separated subset of the configs")
    ap.add_argument("--interleave", action="store_true",
                    help="run every config on each image in turn (fairer on a shared machine)")
    args = ap.parse_args()
    items = (lfw_images(args.lfw, args.n) if args.lfw else []) + photo_variants()
    chosen = [c.strip() for c in args.configs.split(",") if c.strip()] or list(CONFIGS)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as cache:
        pipes = {cfg: make_pipe(cache, *CONFIGS[cfg]) for cfg in chosen} if args.interleave else {}
        for pipe in pipes.values():
            run_config(pipe, items[:3])  # warm up (sessions, caches)
        if pipes:
            results = run_interleaved(pipes, items)
        for cfg in [] if pipes else chosen:
            pipe = make_pipe(cache, *CONFIGS[cfg])
            run_config(pipe, items[:3])  # warm up (sessions, caches)
            results[cfg] = run_config(pipe, items)
        for cfg in chosen:
            print(cfg, {k: f"{s['hits']}/{s['n']}" for k, s in results[cfg].items()}, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detect.json").write_text(json.dumps(results, indent=1))
    text = table(results)
    (args.out / "detect.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
