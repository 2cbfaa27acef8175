"""Stage 1: decode untrusted bytes into an RGB uint8 array, safely.

Handles EXIF orientation, grayscale, CMYK, alpha, 16-bit, palette and animated images
(the first frame), and refuses decompression bombs before any pixel is decoded.

Formats are decided by content (magic bytes, then Pillow's own identification), never by a
file name: JPEG, PNG, GIF, BMP, TIFF, WebP and Netpbm (P1-P6: .pbm/.pgm/.ppm/.pnm).
"""

from __future__ import annotations

import base64
import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceledger.errors import ImageError, ImageTooLargeError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "MPO", "PPM"})
# Names that are handed to the decoder without sniffing first (it still checks the content);
# any other file is an image only if ``sniff_format`` recognises its first bytes.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp",
     ".pbm", ".pgm", ".ppm", ".pnm"}
)
SNIFF_BYTES = 32
# Netpbm as the format defines it; Pillow's PPM reader also takes PFM floats (Pf) and its
# own P0/Py variants, which we do not accept.
NETPBM_MAGIC = frozenset({b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"})
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def is_image_file(path: Path) -> bool:
    """A file to hand to the decoder: a known image name, or content that announces an image."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            return sniff_format(fh.read(SNIFF_BYTES)) is not None
    except OSError:
        return False


def sniff_format(head: bytes) -> str | None:
    """The image format the first bytes of a file announce (Pillow's name), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if (head[:2] == b"BM" and len(head) >= 18
            and struct.unpack("<I", head[14:18])[0] in _BMP_HEADER_SIZES):
        return "BMP"
    if head[:2] in NETPBM_MAGIC and len(head) > 2 and head[2:3].isspace():
        return "PPM"
    return None


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
        # (float32, in place: one full-size working array)
        arr = np.asarray(img, dtype=np.float32)
        hi = float(arr.max()) if arr.size else 0.0
        arr *= 255.0 / (65535.0 if hi > 255 else 255.0)
        np.clip(arr, 0, 255, out=arr)
        return Image.fromarray(arr.astype(np.uint8), mode="L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr -= lo
        arr *= 255.0 / (hi - lo or 1.0)
        np.clip(arr, 0, 255, out=arr)
        return Image.fromarray(arr.astype(np.uint8), mode="L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Onto white, with one full-size copy (not three): memory is bounded per pixel.
        rgba = img if mode == "RGBA" else img.convert("RGBA")
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, (0, 0), rgba)
        return out
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
            if fmt == "PPM" and data[:2] not in NETPBM_MAGIC:
                raise ImageError(f"unsupported Netpbm variant {data[:2]!r} (P1-P6 only)")
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
            upright: Image.Image = img
            if img.getexif().get(0x0112, 1) not in (1, None):  # else no full-size copy
                upright = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb(upright)
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


_BAND_PIXELS = 2_000_000


def working_copy(pixels: np.ndarray, max_pixels: int | None) -> tuple[np.ndarray, float]:
    """``pixels`` scaled down to at most ``max_pixels`` (and the scale used, 1.0 when it is
    already small enough), for the stages whose memory grows with the image (the detector's
    upsampled pyramid): a worker's peak memory then depends on this budget, not on the photo."""
    h, w = pixels.shape[:2]
    if max_pixels is None or h * w <= max_pixels:
        return pixels, 1.0
    scale = (max_pixels / (h * w)) ** 0.5
    out_w = max(1, int(w * scale))
    # In bands of rows (box filter), so no second full-size copy of the photo is made.
    step = max(1, _BAND_PIXELS // w)
    bands = []
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        rows = int(y1 * scale) - int(y0 * scale)
        if rows > 0:
            band = Image.fromarray(pixels[y0:y1]).resize((out_w, rows), Image.Resampling.BOX)
            bands.append(np.asarray(band, dtype=np.uint8))
    return np.ascontiguousarray(np.concatenate(bands)), scale


# Formats every browser shows in an <img>; others (TIFF, Netpbm) are shown as a PNG rendition.
WEB_MEDIA = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp",
             "BMP": "image/bmp"}


def preview_data_uri(image: DecodedImage, longest: int = 1200) -> str | None:
    """A PNG ``data:`` URI of a decoded image whose format browsers cannot show (TIFF, Netpbm),
    scaled to at most ``longest`` pixels a side; None when the browser can show the original."""
    if image.format in WEB_MEDIA or image.format == "MPO":
        return None
    pic = Image.fromarray(image.pixels)
    pic.thumbnail((longest, longest))
    buf = io.BytesIO()
    pic.save(buf, format="PNG", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def web_rendition(data: bytes, *, max_pixels: int) -> tuple[bytes, str]:
    """(bytes, media type) a browser can show: the original when it can, else a PNG of the
    decoded pixels (orientation applied, as the stored face boxes are)."""
    fmt = sniff_format(data[:SNIFF_BYTES])
    if fmt in WEB_MEDIA:
        return data, WEB_MEDIA[fmt]
    pixels = decode_image(data, max_pixels=max_pixels).pixels
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=3)
    return buf.getvalue(), "image/png"
