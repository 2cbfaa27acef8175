"""Stage 1: decode untrusted bytes into an RGB uint8 array, safely.

Handles EXIF orientation, grayscale, CMYK, alpha, 16-bit, palette and animated images
(the first frame), and refuses decompression bombs before any pixel is decoded.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceledger.errors import ImageError, ImageTooLargeError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "MPO"})
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
)


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # (h, w, 3) uint8 RGB, EXIF orientation applied
    format: str
    width: int
    height: int


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit integer greyscale: scale to 8 bits by the actual range.
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 0.0
        scale = 255.0 / (65535.0 if hi > 255 else 255.0)
        arr8 = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        span = hi - lo or 1.0
        arr8 = np.clip((arr - lo) / span * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int | None = None) -> DecodedImage:
    """Decode ``data`` or raise an :class:`ImageError` saying why not."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLargeError(
            f"file is {len(data)} bytes, over the {max_bytes}-byte limit", bytes=len(data)
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format or "unknown"
            if fmt not in ALLOWED_FORMATS:
                raise ImageError(f"unsupported image format {fmt}")
            width, height = img.size
            if width <= 0 or height <= 0:
                raise ImageError("image has no pixels")
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"image is {width}x{height} = {width * height} pixels, over the "
                    f"{max_pixels}-pixel cap (possible decompression bomb)",
                    pixels=width * height,
                )
            if getattr(img, "is_animated", False):
                img.seek(0)
            img.load()
            rgb = _to_rgb(ImageOps.exif_transpose(img) or img)
            pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(
            f"refused as a possible decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not an image (unrecognised file content)") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageError(f"corrupt or truncated image: {exc}") from exc
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageError(f"unexpected pixel layout {pixels.shape}")
    return DecodedImage(pixels=pixels, format=fmt, width=pixels.shape[1], height=pixels.shape[0])

