from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from faceledger.decode import decode_image
from faceledger.errors import ImageError, ImageTooLargeError
from tests.photos import astronaut, encode

CAP = 40_000_000


def test_rgb_jpeg_decodes() -> None:
    img = decode_image(encode(astronaut()), max_pixels=CAP)
    assert img.pixels.shape == (512, 512, 3) and img.pixels.dtype == np.uint8
    assert img.format == "JPEG"


@pytest.mark.parametrize("data,needle", [
    (b"", "empty"),
    (b"hello, I am a text file pretending to be a JPEG\n", "not an image"),
])
def test_non_images_refused(data: bytes, needle: str) -> None:
    with pytest.raises(ImageError, match=needle):
        decode_image(data, max_pixels=CAP)


def test_truncated_jpeg_refused() -> None:
    data = encode(astronaut())
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 3], max_pixels=CAP)


def test_decompression_bomb_refused_before_decoding() -> None:
    bomb = encode(Image.new("L", (10_000, 10_000)), "PNG")  # tiny file, 100 M pixels
    assert len(bomb) < 200_000
    with pytest.raises(ImageTooLargeError, match="decompression bomb"):
        decode_image(bomb, max_pixels=CAP)


def test_byte_cap() -> None:
    with pytest.raises(ImageTooLargeError):
        decode_image(encode(astronaut()), max_pixels=CAP, max_bytes=1000)


def test_cmyk_converted() -> None:
    data = encode(astronaut().convert("CMYK"))
    img = decode_image(data, max_pixels=CAP)
    ref = np.asarray(astronaut(), dtype=np.int16)
    assert np.abs(img.pixels.astype(np.int16) - ref).mean() < 12


def test_sixteen_bit_png_scaled() -> None:
    arr = (np.asarray(astronaut().convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    data = encode(Image.fromarray(arr), "PNG")  # uint16 -> mode I;16
    img = decode_image(data, max_pixels=CAP)
    grey = np.asarray(astronaut().convert("L"), dtype=np.int16)
    assert np.abs(img.pixels[..., 0].astype(np.int16) - grey).max() <= 1


def test_alpha_composited_on_white() -> None:
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    img = decode_image(encode(rgba, "PNG"), max_pixels=CAP)
    assert tuple(img.pixels[0, 0]) == (255, 255, 255)


def test_palette_and_grayscale() -> None:
    for mode in ("P", "L"):
        img = decode_image(encode(astronaut().convert(mode), "PNG"), max_pixels=CAP)
        assert img.pixels.shape == (512, 512, 3)


def test_animated_gif_first_frame() -> None:
    frames = [Image.new("RGB", (30, 30), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    img = decode_image(buf.getvalue(), max_pixels=CAP)
    assert img.pixels[0, 0, 0] > 200 and img.pixels[0, 0, 2] < 50


def test_exif_orientation_applied() -> None:
    src = astronaut().crop((0, 0, 512, 300))  # landscape 512x300
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img = decode_image(encode(src, exif=exif.tobytes()), max_pixels=CAP)
    assert (img.width, img.height) == (300, 512)
