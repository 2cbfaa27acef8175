"""Embed a folder-per-identity dataset through the product pipeline (decode -> detect -> align ->
embed), with a process pool and a cache file so that a rerun is fast.

The subject of each image is the detected face nearest the image centre (evaluation sets such
as LFW are centred on one person). When the configured detector finds no face, the image is
flagged ``detected=False`` and rescued: first by the model's other detector (dlib's MMOD CNN when
HOG is configured), else the central box (the middle half of the image) is aligned and embedded.
``rescue`` records which ("" = found by the configured detector). Each command decides whether to
use rescued embeddings (LFW verification must score every pair; identification and calibration
leave them out, as the product would find no face).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceledger.errors import FaceledgerError, ValidationError
from faceledger.faces.decode import is_image_file
from faceledger.faces.detect import Box, Detection, Detector
from faceledger.faces.models.base import ModelOptions, available_models, load_model
from faceledger.faces.pipeline import FacePipeline
from faceledger.settings import Settings

FACE_RULE = "nearest-centre; rescue: other detector, then middle-half box"
CACHE_FORMAT = 2
CENTRE = "centre"
ProgressFn = Callable[[int, int], None]  # (done, total)

# vector, detected by the configured detector, n_faces, error, rescue ("" | detector | "centre")
Row = tuple[npt.NDArray[np.float32] | None, bool, int, str, str]


@dataclass
class EmbedSet:
    root: Path
    model_id: str
    paths: list[str]  # relative to root, '/'-separated
    identities: npt.NDArray[np.str_]
    vectors: npt.NDArray[np.float32]  # (n, dim), unit length; NaN rows where an error occurred
    detected: npt.NDArray[np.bool_]
    n_faces: npt.NDArray[np.int64]
    rescue: npt.NDArray[np.str_]  # "" where the configured detector found the face
    errors: dict[str, str] = field(default_factory=dict)  # path -> why it could not be embedded
    embedded_now: int = 0  # computed in this run (the rest came from the cache)
    seconds: float = 0.0

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        return np.array([p not in self.errors for p in self.paths], dtype=bool)

    def usable(self, fallback: bool) -> npt.NDArray[np.bool_]:
        return self.ok & (self.detected | fallback)

    def subset(self, mask: npt.NDArray[np.bool_]) -> EmbedSet:
        idx = np.flatnonzero(mask)
        paths = [self.paths[i] for i in idx]
        return EmbedSet(self.root, self.model_id, paths, self.identities[idx], self.vectors[idx],
                        self.detected[idx], self.n_faces[idx], self.rescue[idx],
                        {p: e for p, e in self.errors.items() if p in set(paths)},
                        self.embedded_now, self.seconds)

    def index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.paths)}

    def summary(self) -> dict[str, Any]:
        ok = self.ok
        return {"images": len(self.paths), "identities": len(set(self.identities.tolist())),
                "detected": int((self.detected & ok).sum()),
                "rescued_other_detector": int((ok & ~self.detected
                                               & (self.rescue != CENTRE)).sum()),
                "fallback_central_box": int((ok & (self.rescue == CENTRE)).sum()),
                "multi_face_images": int((self.n_faces > 1).sum()),
                "errors": len(self.errors), "embedded_now": self.embedded_now,
                "from_cache": len(self.paths) - self.embedded_now,
                "seconds": round(self.seconds, 1), "face_rule": FACE_RULE}


def identity_of(rel: str) -> str:
    return rel.split("/", 1)[0]


def walk_dataset(root: Path) -> list[str]:
    """Every image under ``root/<identity>/`` (recursively), as sorted relative paths: files
    with an image name (.jpg, .png, .pgm, ...) and files whose content is an image."""
    if not root.is_dir():
        raise ValidationError(f"dataset folder {root} does not exist or is not a folder")
    out = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sub.rglob("*"):
            if f.is_file() and not f.name.startswith(".") and is_image_file(f):
                out.append(f.relative_to(root).as_posix())
    if not out:
        raise ValidationError(f"no images found in {root}: expected one folder per identity")
    return sorted(out)


def apply_exclusions(rel_paths: list[str], path: Path) -> tuple[list[str], list[str]]:
    """Leave out what ``path`` lists, one entry a line ('#' starts a comment): an image path
    relative to the dataset, or an identity folder name (all of its images) - e.g. reviewed
    label errors of a public dataset. Returns (kept, left out)."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise ValidationError(f"cannot read exclusion list {path}: {exc.strerror}") from None
    entries = {ln.split("#", 1)[0].strip() for ln in lines} - {""}
    known = set(rel_paths) | {identity_of(p) for p in rel_paths}
    unknown = sorted(entries - known)
    if unknown:
        raise ValidationError(f"{path}: {len(unknown)} entries name no image or identity of the "
                              f"dataset, e.g. {', '.join(unknown[:3])}")
    dropped = [p for p in rel_paths if p in entries or identity_of(p) in entries]
    gone = set(dropped)
    return [p for p in rel_paths if p not in gone], dropped


# ---------------------------------------------------------------- worker side

_PIPE: FacePipeline | None = None
_RESCUE: RescueDetector | None = None


class RescueDetector:
    """The model's first detector other than the configured one (dlib's CNN when HOG is
    configured), loaded on first use: most images never need it."""

    def __init__(self, model_id: str, kind: str) -> None:
        self.model_id, self.kind = model_id, kind
        self._detector: Detector | None = None

    def detect(self, pixels: npt.NDArray[np.uint8]) -> list[Detection]:
        if self._detector is None:
            self._detector = load_model(self.model_id, ModelOptions(self.kind)).detector
        return self._detector.detect(pixels)


def rescue_detector(settings: Settings) -> RescueDetector | None:
    """None if the model has only one detector."""
    caps = available_models().get(settings.model)
    others = [d for d in (caps.detectors if caps else ()) if d != settings.detector]
    return RescueDetector(settings.model, others[0]) if others else None


def _init_worker(settings: dict[str, Any]) -> None:
    global _PIPE, _RESCUE
    s = Settings.model_validate(settings)
    _PIPE = FacePipeline.from_settings(s)
    _RESCUE = rescue_detector(s)


def _nearest_centre(dets: list[Detection], w: int, h: int) -> Box:
    return min(dets, key=lambda d: ((d.box.left + d.box.right) / 2 - w / 2) ** 2
               + ((d.box.top + d.box.bottom) / 2 - h / 2) ** 2).box


def embed_image(pipe: FacePipeline, data: bytes, rescue: RescueDetector | None = None) -> Row:
    """The subject's embedding: the nearest-centre detection, else the rescue detector's,
    else the central box."""
    try:
        img = pipe.decode(data)
        h, w = img.pixels.shape[:2]
        dets = pipe.model.detector.detect(img.pixels)
        how = ""
        if dets:
            box = _nearest_centre(dets, w, h)
        elif rescue is not None and (found := rescue.detect(img.pixels)):
            box, how = _nearest_centre(found, w, h), rescue.kind
        else:
            box, how = Box(w // 4, h // 4, w - w // 4, h - h // 4), CENTRE
        aligned = pipe.model.aligner.align(img.pixels, box)
        vec = pipe.model.embedder.embed([aligned])[0].vector.astype(np.float32)
        return vec, bool(dets), len(dets), "", how
    except FaceledgerError as exc:
        return None, False, 0, f"{exc.code}: {exc.message}", ""
    except Exception as exc:  # noqa: BLE001 - one bad file never aborts an evaluation
        return None, False, 0, f"{type(exc).__name__}: {exc}", ""


def _embed_files(paths: list[str]) -> list[Row]:
    assert _PIPE is not None, "worker not initialised"
    out: list[Row] = []
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as exc:
            out.append((None, False, 0, f"unreadable: {exc.strerror}", ""))
            continue
        out.append(embed_image(_PIPE, data, _RESCUE))
    return out


# ---------------------------------------------------------------- cache


def cache_meta(settings: Settings) -> dict[str, Any]:
    return {"format": CACHE_FORMAT, "model_id": settings.model, "detector": settings.detector,
            "upsample": settings.upsample, "min_detector_score": settings.min_detector_score,
            "jitters": settings.jitters, "face_rule": FACE_RULE}


def load_cache(path: Path, meta: dict[str, Any]) -> dict[str, tuple[int, Row]]:
    """path -> (file size, row); refuses a cache made with other model settings."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            found = json.loads(str(z["meta"]))
            if found != meta:
                raise ValidationError(
                    f"cache {path} was made with other settings ({found}); these are {meta}: "
                    "use another --cache file")
            rows: dict[str, tuple[int, Row]] = {}
            for p, size, v, d, n, e, r in zip(z["paths"].tolist(), z["sizes"].tolist(),
                                               z["vectors"], z["detected"].tolist(),
                                               z["n_faces"].tolist(), z["errors"].tolist(),
                                               z["rescue"].tolist(), strict=True):
                rows[p] = (int(size),
                           (None if e else v.astype(np.float32), bool(d), int(n), e, r))
            return rows
    except (OSError, KeyError, ValueError) as exc:
        raise ValidationError(f"cannot read cache {path}: {exc}") from None


def save_cache(path: Path, meta: dict[str, Any], rows: dict[str, tuple[int, Row]], dim: int) -> None:
    keys = sorted(rows)
    vec = np.full((len(keys), dim), np.nan, dtype=np.float32)
    for i, k in enumerate(keys):
        v = rows[k][1][0]
        if v is not None:
            vec[i] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta, sort_keys=True)), paths=np.array(keys, dtype=str),
             sizes=np.array([rows[k][0] for k in keys], dtype=np.int64), vectors=vec,
             detected=np.array([rows[k][1][1] for k in keys], dtype=bool),
             n_faces=np.array([rows[k][1][2] for k in keys], dtype=np.int64),
             errors=np.array([rows[k][1][3] for k in keys], dtype=str),
             rescue=np.array([rows[k][1][4] for k in keys], dtype=str))
    os.replace(tmp, path)


# ---------------------------------------------------------------- driver


def _file_size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return -1


def embed_dataset(root: Path, rel_paths: list[str], settings: Settings, *, workers: int = 1,
                  cache: Path | None = None, progress: ProgressFn | None = None,
                  save_every: int = 2000) -> EmbedSet:
    """Embeddings for ``rel_paths`` (relative to ``root``), from the cache where it has them."""
    t0 = time.perf_counter()
    meta = cache_meta(settings)
    rows = load_cache(cache, meta) if cache else {}
    sizes = {p: _file_size(root / p) for p in rel_paths}
    todo = [p for p in rel_paths if p not in rows or rows[p][0] != sizes[p]]
    total, done = len(rel_paths), len(rel_paths) - len(todo)
    if progress:
        progress(done, total)
    dim = next((r[1][0].shape[0] for r in rows.values() if r[1][0] is not None), 128)
    since_save = 0

    def record(batch: list[str], results: list[Row]) -> None:
        nonlocal done, since_save, dim
        for p, r in zip(batch, results, strict=True):
            rows[p] = (sizes[p], r)
            if r[0] is not None:
                dim = r[0].shape[0]
        done += len(batch)
        since_save += len(batch)
        if cache and since_save >= save_every:
            save_cache(cache, meta, rows, dim)
            since_save = 0
        if progress:
            progress(done, total)

    chunks = [todo[i : i + 16] for i in range(0, len(todo), 16)]
    if chunks and workers <= 1:
        _init_worker(settings.model_dump())
        for c in chunks:
            record(c, _embed_files([str(root / p) for p in c]))
    elif chunks:
        _pooled(root, chunks, settings, workers, record)
    if cache and (since_save or not cache.exists()):
        save_cache(cache, meta, rows, dim)

    vectors = np.full((total, dim), np.nan, dtype=np.float32)
    errors: dict[str, str] = {}
    for i, p in enumerate(rel_paths):
        v, _, _, err, _ = rows[p][1]
        if v is None:
            errors[p] = err or "no embedding"
        else:
            vectors[i] = v
    return EmbedSet(root, settings.model, list(rel_paths),
                    np.array([identity_of(p) for p in rel_paths], dtype=str), vectors,
                    np.array([rows[p][1][1] for p in rel_paths], dtype=bool),
                    np.array([rows[p][1][2] for p in rel_paths], dtype=np.int64),
                    np.array([rows[p][1][4] for p in rel_paths], dtype=str), errors,
                    len(todo), time.perf_counter() - t0)


def _pooled(root: Path, chunks: list[list[str]], settings: Settings, workers: int,
            record: Callable[[list[str], list[Row]], None]) -> None:
    ctx = get_context("spawn")
    args = (settings.model_dump(),)
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=args)
    inflight: dict[Future[list[Row]], list[str]] = {}
    pending = list(reversed(chunks))
    try:
        while pending or inflight:
            while pending and len(inflight) < workers * 3:
                c = pending.pop()
                inflight[pool.submit(_embed_files, [str(root / p) for p in c])] = c
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in done:
                c = inflight.pop(fut)
                try:
                    record(c, fut.result())
                except BrokenProcessPool:
                    # a worker died on a hostile file: give up on this chunk, restart the pool
                    record(c, [(None, False, 0, "worker crashed", "") for _ in c])
                    pending.extend(inflight.values())
                    inflight.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                               initargs=args)
                    break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
