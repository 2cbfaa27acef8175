"""Netpbm (.pbm/.pgm/.ppm) variants of the test photos, made at run time."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.photos import encode


def ppm(img: Image.Image) -> bytes:
    """Binary colour (P6)."""
    return encode(img.convert("RGB"), "PPM")


def pgm(img: Image.Image) -> bytes:
    """Binary greyscale (P5)."""
    return encode(img.convert("L"), "PPM")


def pgm16(img: Image.Image) -> bytes:
    """Binary greyscale with 16-bit samples (P5, maxval 65535, big-endian)."""
    arr = np.asarray(img.convert("L"), dtype=">u2") * 257
    h, w = arr.shape
    return f"P5\n{w} {h}\n65535\n".encode() + arr.tobytes()


def plain_ppm(img: Image.Image) -> bytes:
    """ASCII colour (P3), with a comment line, as some scanners write it."""
    arr = np.asarray(img.convert("RGB"))
    h, w, _ = arr.shape
    body = "\n".join(" ".join(str(v) for v in row.ravel()) for row in arr)
    return f"P3\n# made by the faceledger tests\n{w} {h}\n255\n{body}\n".encode()


def pbm(img: Image.Image) -> bytes:
    """Binary bitmap (P4)."""
    return encode(img.convert("1"), "PPM")
