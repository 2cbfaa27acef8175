"""Embed every LFW image with faceledger's pipeline (2 processes); write an .npz for the other
benchmarks and the accuracy evaluation. The subject's face is the detection nearest the centre."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

_PIPE: Any = None


def _init() -> None:
    global _PIPE
    from faceledger.faces.pipeline import FacePipeline
    from faceledger.settings import Settings

    _PIPE = FacePipeline.from_settings(Settings())


def _embed(path: str) -> tuple[str, np.ndarray, bool, int]:
    from faceledger.faces.detect import Box

    pipe = _PIPE
    img = pipe.decode(Path(path).read_bytes())
    h, w = img.pixels.shape[:2]
    dets = pipe.model.detector.detect(img.pixels)
    if dets:
        box = min(dets, key=lambda d: ((d.box.left + d.box.right) / 2 - w / 2) ** 2
                  + ((d.box.top + d.box.bottom) / 2 - h / 2) ** 2).box
    else:  # LFW's deep-funneled faces are centred: fall back to the central box
        box = Box(w // 4, h // 4, w - w // 4, h - h // 4)
    aligned = pipe.model.aligner.align(img.pixels, box)
    vec = pipe.model.embedder.embed([aligned])[0].vector
    return path, vec, bool(dets), len(dets)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("bench/results/lfw_embeddings.npz"))
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args()
    files = sorted(str(p) for p in args.lfw.glob("*/*.jpg"))
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.processes, initializer=_init) as pool:
        rows = pool.map(_embed, files, chunksize=16)
    dt = time.perf_counter() - t0
    rel = [str(Path(p).relative_to(args.lfw)) for p, *_ in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, paths=np.array(rel), identity=np.array([r.split("/")[0] for r in rel]),
             vectors=np.stack([r[1] for r in rows]).astype(np.float32),
             detected=np.array([r[2] for r in rows]), n_faces=np.array([r[3] for r in rows]))
    print(f"{len(rows)} images in {dt:.0f} s ({len(rows) / dt:.1f} images/s); "
          f"{sum(not r[2] for r in rows)} without a detection (central-box fallback)")


if __name__ == "__main__":
    main()
