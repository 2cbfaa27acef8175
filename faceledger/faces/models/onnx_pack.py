"""The FaceModel of a model pack (``pack.py``): an ONNX detector with five landmarks, a
similarity-transform alignment to the manifest's template, an ONNX embedder.

The signatures are stated in ``pack.py``. The detector's landmarks reach the aligner through a
per-thread note of the last detection (the ``Aligner`` protocol passes only the box); a box the
note does not hold (a detection made on a scaled copy, a stored box) is re-detected on a crop
around it, and failing that the template is fitted to the box itself.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from faceledger.faces.align import AlignedFace
from faceledger.faces.detect import Box, Detection
from faceledger.faces.embed import Embedding, normalise
from faceledger.faces.models.base import FaceModel, ModelCapabilities, ModelOptions
from faceledger.faces.models.pack import PackError

if TYPE_CHECKING:
    from faceledger.faces.align import Aligner
    from faceledger.faces.detect import Detector
    from faceledger.faces.embed import Embedder
    from faceledger.faces.models.base import Factory
    from faceledger.faces.models.pack import DetectorSpec, EmbedderSpec, LoadedPack

MAX_BATCH = 64
Raw = tuple[np.ndarray, float, np.ndarray]  # box (4,), score, landmarks (5, 2); image pixels


def capabilities_of(pack: LoadedPack) -> ModelCapabilities:
    m = pack.manifest
    # The pack's own detector answers to the default detector setting ("hog").
    return ModelCapabilities(
        model_id=m.model_id, dim=m.embedder.embedding_size, chip_size=m.alignment.chip_size,
        landmarks=5, detectors=("hog",), published_accuracy=m.published_accuracy,
        source=f"model pack {m.name} {m.version} ({pack.folder}); licence: {m.licence}")


def factory(pack: LoadedPack) -> Factory:
    def load(options: ModelOptions) -> FaceModel:
        return PackFaceModel(pack, options)

    return load


def session(path: str, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    available = ort.get_available_providers()
    chosen = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(path, sess_options=opts, providers=chosen)


def to_tensor(pixels: np.ndarray, channels: str, mean: Sequence[float], std: Sequence[float]
              ) -> np.ndarray:
    """(N, H, W, 3) or (H, W, 3) uint8 RGB -> float32 NCHW, ``(x - mean) / std``."""
    x: np.ndarray = np.asarray(pixels, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if channels == "BGR":
        x = x[..., ::-1]
    out: np.ndarray = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def nms(raw: list[Raw], iou: float) -> list[Raw]:
    kept: list[Raw] = []
    for r in sorted(raw, key=lambda r: -r[1]):
        if all(_iou(r[0], k[0]) <= iou for k in kept):
            kept.append(r)
    return kept


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift) taking ``src`` points closest to
    ``dst`` in least squares (Umeyama 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    u, s, vt = np.linalg.svd(dc.T @ sc / len(src))
    d = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rot = u @ np.diag(d) @ vt
    var = (sc**2).sum() / len(src)
    scale = float((s * d).sum() / var) if var > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def warp(pixels: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` chip: chip pixel p shows image pixel M^-1 p (bilinear)."""
    a, t = m[:, :2], m[:, 2]
    inv = np.linalg.inv(a)
    coeffs = (*inv[0], -(inv[0] @ t), *inv[1], -(inv[1] @ t))
    img = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    out = img.transform((size, size), Image.Transform.AFFINE, coeffs,
                        resample=Image.Resampling.BILINEAR)
    return np.asarray(out)


class PackDetector:
    """``boxes_landmarks_v1``: (N, 15) rows of box, score and five landmarks, input pixels."""

    def __init__(self, spec: DetectorSpec, sess: Any) -> None:
        self.spec, self._session = spec, sess
        self.name = f"pack-{spec.signature}"
        self._input = sess.get_inputs()[0].name
        self._notes = threading.local()

    def _letterbox(self, pixels: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = pixels.shape[:2]
        if self.spec.input_size is None:
            scale = min(1.0, self.spec.max_side / max(h, w))
            tw, th = max(1, round(w * scale)), max(1, round(h * scale))
            canvas_w, canvas_h = tw, th
        else:
            canvas_w, canvas_h = self.spec.input_size
            scale = min(canvas_w / w, canvas_h / h)
            tw, th = max(1, round(w * scale)), max(1, round(h * scale))
        img = pixels if (tw, th) == (w, h) else np.asarray(
            Image.fromarray(pixels).resize((tw, th), Image.Resampling.BILINEAR))
        canvas = np.zeros((canvas_h, canvas_w, 3), np.uint8)
        canvas[:th, :tw] = img
        return canvas, scale

    def raw_detections(self, pixels: np.ndarray) -> list[Raw]:
        """Detections in the image's pixels, above the score threshold, after NMS."""
        img = np.asarray(pixels, dtype=np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        canvas, scale = self._letterbox(img)
        tensor = to_tensor(canvas, self.spec.channels, self.spec.mean, self.spec.std)
        out = np.asarray(self._session.run(None, {self._input: tensor})[0], np.float32)
        if out.size % 15:
            raise PackError(f"the pack's detector returned shape {out.shape}, not (N, 15)")
        rows = out.reshape(-1, 15)
        rows = rows[rows[:, 4] >= self.spec.score_threshold]
        raw = [(r[:4] / scale, float(r[4]), r[5:].reshape(5, 2) / scale) for r in rows]
        return nms(raw, self.spec.nms_iou)

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        h, w = pixels.shape[:2]
        found: list[Detection] = []
        notes: dict[tuple[int, int, Box], np.ndarray] = {}
        for box, score, marks in self.raw_detections(pixels):
            b = Box(*(round(float(v)) for v in box)).clipped(w, h)
            if b.width > 0 and b.height > 0:
                found.append(Detection(b, score))
                notes[(h, w, b)] = marks
        self._notes.last = notes
        found.sort(key=lambda d: (d.box.left, d.box.top))
        return found

    def landmarks(self, pixels: np.ndarray, box: Box) -> np.ndarray | None:
        """The five landmarks of the face in ``box``: noted at detection, else re-detected."""
        h, w = pixels.shape[:2]
        noted: dict[tuple[int, int, Box], np.ndarray] = getattr(self._notes, "last", {})
        if (h, w, box) in noted:
            return noted[(h, w, box)]
        m = max(box.width, box.height) // 2
        crop = Box(box.left - m, box.top - m, box.right + m, box.bottom + m).clipped(w, h)
        if crop.width < 2 or crop.height < 2:
            return None
        shift = np.array([crop.left, crop.top], np.float32)
        target = np.array(box.as_list(), np.float32)
        best, best_iou = None, 0.3
        for b, _, marks in self.raw_detections(pixels[crop.top:crop.bottom, crop.left:crop.right]):
            iou = _iou(b + np.tile(shift, 2), target)
            if iou > best_iou:
                best, best_iou = marks + shift, iou
        return best


class PackAligner:
    name = "pack-5-point-similarity"

    def __init__(self, detector: PackDetector, template: Sequence[tuple[float, float]],
                 chip_size: int) -> None:
        self.detector, self.chip_size = detector, chip_size
        self.template = np.asarray(template, np.float64)

    def align(self, pixels: np.ndarray, box: Box) -> AlignedFace:
        marks = self.detector.landmarks(pixels, box)
        if marks is None:  # no landmarks: fit the template to the box (chip = the box)
            s = np.array([box.width, box.height]) / self.chip_size
            marks = self.template * s + np.array([box.left, box.top])
        m = similarity_transform(marks, self.template)
        img = pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2)
        chip = warp(img, m, self.chip_size)
        points = [(round(float(x)), round(float(y))) for x, y in marks]
        return AlignedFace(landmarks=points, chip=chip)


class PackEmbedder:
    """``embedding_v1``: aligned chips (N, 3, s, s), normalised -> (N, D); L2-normalised here."""

    def __init__(self, model_id: str, spec: EmbedderSpec, sess: Any, chip_size: int) -> None:
        self.model_id, self.spec, self._session = model_id, spec, sess
        self.dim = spec.embedding_size
        self.chip_size = chip_size
        self._input = sess.get_inputs()[0].name

    def vectors(self, chips: np.ndarray) -> np.ndarray:
        s = self.chip_size
        if chips.ndim != 4 or chips.shape[1:] != (s, s, 3):
            raise ValueError(f"face chips must be (N, {s}, {s}, 3), not {chips.shape}")
        parts = []
        for i in range(0, len(chips), MAX_BATCH):
            x = to_tensor(chips[i:i + MAX_BATCH], self.spec.channels, self.spec.mean, self.spec.std)
            parts.append(np.asarray(self._session.run(None, {self._input: x})[0], np.float32))
        out = np.concatenate(parts).reshape(len(chips), -1)
        if out.shape[1] != self.dim:
            raise PackError(f"the pack's embedder returned {out.shape[1]} values per face; the "
                            f"manifest says embedding_size {self.dim}")
        return normalise(out)

    def embed(self, faces: Sequence[AlignedFace]) -> list[Embedding]:
        if not faces:
            return []
        vectors = self.vectors(np.stack([np.asarray(f.chip, np.uint8) for f in faces]))
        return [Embedding(self.model_id, v) for v in vectors]


class PackFaceModel:
    """Checks the pack's files against their SHA-256 first, then opens the two sessions."""

    def __init__(self, pack: LoadedPack, options: ModelOptions) -> None:
        pack.verify()
        m = pack.manifest
        self.pack = pack
        self.capabilities: ModelCapabilities = capabilities_of(pack)
        threads = options.onnx_threads
        det = PackDetector(m.detector, session(str(pack.path(m.detector.file)), threads))
        self.detector: Detector = det
        self.aligner: Aligner = PackAligner(det, m.alignment.template, m.alignment.chip_size)
        self.embedder: Embedder = PackEmbedder(m.model_id, m.embedder,
                                     session(str(pack.path(m.embedder.file)), threads),
                                     m.alignment.chip_size)
