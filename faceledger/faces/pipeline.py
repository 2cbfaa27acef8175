"""decode -> detect -> align -> embed, for one image. Pure computation: no database, no files."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from faceledger.faces.decode import DecodedImage, decode_image, working_copy
from faceledger.faces.detect import UPSAMPLE_AUTO, Box, Detection, Detector, padded, unpadded
from faceledger.faces.models.base import FaceModel, ModelOptions, load_model, register_packs

if TYPE_CHECKING:
    from faceledger.faces.embed import Embedding
    from faceledger.settings import Settings


@dataclass(frozen=True)
class FaceQuality:
    face_px: int  # shorter side of the detection box, in pixels
    detector_score: float
    sharpness: float  # variance of the Laplacian on the grey chip
    brightness: float  # mean grey level of the chip, 0..255

    def as_dict(self) -> dict[str, float]:
        return {
            "face_px": self.face_px,
            "detector_score": round(self.detector_score, 4),
            "sharpness": round(self.sharpness, 2),
            "brightness": round(self.brightness, 2),
        }


@dataclass(frozen=True)
class FaceResult:
    box: Box
    landmarks: list[tuple[int, int]]
    quality: FaceQuality
    embedding: Embedding
    thumbnail: bytes  # JPEG


@dataclass(frozen=True)
class ImageResult:
    width: int
    height: int
    format: str
    faces: list[FaceResult] = field(default_factory=list)


def _sharpness(chip: np.ndarray) -> float:
    grey = chip.astype(np.float32).mean(axis=2)
    lap = (
        -4 * grey[1:-1, 1:-1]
        + grey[:-2, 1:-1]
        + grey[2:, 1:-1]
        + grey[1:-1, :-2]
        + grey[1:-1, 2:]
    )
    return float(lap.var())


def make_thumbnail(pixels: np.ndarray, box: Box, size: int) -> bytes:
    h, w = pixels.shape[:2]
    margin = int(0.3 * max(box.width, box.height))
    crop = Box(box.left - margin, box.top - margin, box.right + margin, box.bottom + margin)
    crop = crop.clipped(w, h)
    img = Image.fromarray(pixels[crop.top : crop.bottom, crop.left : crop.right])
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


class FacePipeline:
    """Runs the stages with one loaded model bundle."""

    def __init__(self, model: FaceModel, *, max_pixels: int, max_bytes: int | None,
                 max_faces: int, thumbnail_size: int, detect_pixels: int | None = None,
                 detect_pad: int = 0, fallback_pixels: int | None = None) -> None:
        self.model = model
        self.detect_pixels = detect_pixels  # the detector sees at most this many pixels
        self.detect_pad = detect_pad  # border added around the image the detector sees
        # Where the detector finds nothing, the model's fallback detector (if it has one) runs
        # on a copy of at most this many pixels.
        self.fallback: Detector | None = getattr(model, "fallback_detector", None)
        self.fallback_pixels = fallback_pixels
        self.model_id = model.capabilities.model_id
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self.max_faces = max_faces
        self.thumbnail_size = thumbnail_size

    @classmethod
    def from_settings(cls, settings: Settings) -> FacePipeline:
        if settings.model_packs:
            register_packs(settings)  # a pack's model id is known once its manifest is read
        upsample = UPSAMPLE_AUTO if settings.upsample == "auto" else settings.upsample
        options = ModelOptions(settings.detector, upsample, settings.min_detector_score,
                               settings.jitters, embed_runtime=settings.embed_runtime,
                               onnx_threads=settings.onnx_threads,
                               detector_runtime=settings.detector_runtime,
                               fallback_detector="cnn" if settings.detect_fallback else None,
                               cache_dir=str((settings.home / "models").resolve()))
        return cls(
            load_model(settings.model, options),
            max_pixels=settings.max_pixels,
            max_bytes=settings.max_upload_bytes,
            max_faces=settings.max_faces_per_image,
            thumbnail_size=settings.thumbnail_size,
            detect_pixels=settings.detect_max_pixels,
            detect_pad=settings.detect_pad,
            fallback_pixels=min(settings.detect_fallback_max_pixels, settings.detect_max_pixels),
        )

    def decode(self, data: bytes) -> DecodedImage:
        return decode_image(data, max_pixels=self.max_pixels, max_bytes=self.max_bytes)

    def process(self, data: bytes) -> ImageResult:
        return self.process_decoded(self.decode(data))

    def detect(self, image: DecodedImage) -> list[Detection]:
        """The faces found, at most ``max_faces`` (the most confident), left to right: the
        detector's on the padded image, else (none found) the fallback detector's."""
        detections = self.find(image.pixels, self.model.detector, self.detect_pixels)
        if not detections and self.fallback is not None:
            detections = self.find(image.pixels, self.fallback, self.fallback_pixels)
        detections = sorted(detections, key=lambda d: -d.score)[: self.max_faces]
        detections.sort(key=lambda d: (d.box.left, d.box.top))
        return detections

    def find(self, pixels: np.ndarray, detector: Detector, max_pixels: int | None) -> list[Detection]:
        """``detector``'s faces on a copy of at most ``max_pixels`` with the border added, boxes
        in ``pixels``' coordinates and inside it."""
        h, w = pixels.shape[:2]
        work, scale = working_copy(pixels, max_pixels)
        wh, ww = work.shape[:2]
        found = unpadded(detector.detect(padded(work, self.detect_pad)), self.detect_pad, ww, wh)
        del work
        if scale != 1.0:  # boxes back in the decoded image's coordinates
            found = [Detection(Box(*(round(v / scale) for v in (
                d.box.left, d.box.top, d.box.right, d.box.bottom))).clipped(w, h), d.score)
                for d in found]
        return found

    def process_decoded(self, image: DecodedImage, only: int | None = None,
                        thumbnails: bool = True) -> ImageResult:
        """Every face, or with ``only`` just that one (by index) aligned and embedded."""
        detections = self.detect(image)
        if only is not None:
            detections = detections[only : only + 1]
        return self.embed_detections(image, detections, thumbnails)

    def embed_detections(self, image: DecodedImage, detections: list[Detection],
                         thumbnails: bool = True) -> ImageResult:
        pixels = image.pixels
        aligned = [self.model.aligner.align(pixels, d.box) for d in detections]
        embeddings = self.model.embedder.embed(aligned)
        faces = []
        for det, al, emb in zip(detections, aligned, embeddings, strict=True):
            chip = al.chip
            quality = FaceQuality(
                face_px=min(det.box.width, det.box.height),
                detector_score=det.score,
                sharpness=_sharpness(chip),
                brightness=float(chip.mean()),
            )
            faces.append(
                FaceResult(
                    box=det.box,
                    landmarks=al.landmarks,
                    quality=quality,
                    embedding=emb,
                    thumbnail=(make_thumbnail(pixels, det.box, self.thumbnail_size)
                               if thumbnails else b""),
                )
            )
        return ImageResult(image.width, image.height, image.format, faces)
