from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceledger.errors import ImageError, ImageTooLargeError
from faceledger.faces.decode import (
    decode_image,
    is_image_file,
    preview_data_uri,
    sniff_format,
    web_rendition,
    working_copy,
)
from tests.netpbm import pbm, pgm, pgm16, plain_ppm, ppm
from tests.photos import astronaut, encode, grace_hopper

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


# --- Netpbm, and formats decided by content (issue 10 part 13) ---


@pytest.mark.parametrize("make,magic", [(ppm, b"P6"), (pgm, b"P5"), (pgm16, b"P5"),
                                        (plain_ppm, b"P3"), (pbm, b"P4")])
def test_netpbm_decodes(make: Callable[[Image.Image], bytes], magic: bytes) -> None:
    src = grace_hopper().resize((120, 150))
    data = make(src)
    assert data[:2] == magic
    img = decode_image(data, max_pixels=CAP)
    assert img.format == "PPM" and img.pixels.shape == (150, 120, 3)
    if make in (ppm, plain_ppm):
        assert np.abs(img.pixels.astype(int) - np.asarray(src, dtype=int)).max() == 0
    elif make in (pgm, pgm16):  # grey: the three channels equal the greyscale source
        grey = np.asarray(src.convert("L"), dtype=int)
        assert np.abs(img.pixels[..., 1].astype(int) - grey).max() <= 1


def test_sniff_by_content_not_name() -> None:
    g = grace_hopper().resize((64, 80))
    assert sniff_format(encode(g)) == "JPEG"
    assert sniff_format(encode(g, "PNG")) == "PNG"
    assert sniff_format(encode(g, "GIF")) == "GIF"
    assert sniff_format(encode(g, "BMP")) == "BMP"
    assert sniff_format(encode(g, "TIFF")) == "TIFF"
    assert sniff_format(encode(g, "WEBP")) == "WEBP"
    for make in (ppm, pgm, plain_ppm, pbm):
        assert sniff_format(make(g)) == "PPM"
    for not_image in (b"", b"P5", b"P7\nWIDTH 1\n", b"Pf\n1 1\n-1.0\n", b"BM not a bitmap",
                      b"hello world", b"PK\x03\x04zip"):
        assert sniff_format(not_image) is None, not_image


def test_is_image_file_by_content(tmp_path: Path) -> None:
    root = tmp_path
    (root / "scan").write_bytes(pgm(grace_hopper()))  # no extension, Netpbm content
    (root / "photo.dat").write_bytes(encode(grace_hopper()))  # JPEG under a foreign name
    (root / "notes.txt").write_text("not a photo")
    (root / "face.pgm").write_bytes(b"x")  # an image name goes to the decoder, which refuses
    assert [p.name for p in sorted(root.iterdir()) if is_image_file(p)] == [
        "face.pgm", "photo.dat", "scan"]


def test_netpbm_hostile_and_broken_refused() -> None:
    data = ppm(grace_hopper())
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2], max_pixels=CAP)
    # a header announcing 64 M pixels in a 36-byte file: refused before any pixel is read
    with pytest.raises(ImageTooLargeError, match="pixel cap"):
        decode_image(b"P5\n8000 8000\n255\n" + b"\0" * 16, max_pixels=CAP)
    with pytest.raises(ImageError):
        decode_image(b"P5\nnot numbers\n", max_pixels=CAP)
    with pytest.raises(ImageError, match="Netpbm variant"):  # PFM floats: Pillow reads, we don't
        decode_image(b"Pf\n2 2\n-1.0\n" + b"\0" * 16, max_pixels=CAP)
    with pytest.raises(ImageTooLargeError):
        decode_image(data, max_pixels=CAP, max_bytes=len(data) - 1)


def test_browser_renditions_only_for_formats_browsers_cannot_show() -> None:
    jpeg, scan = encode(grace_hopper()), ppm(grace_hopper())
    assert web_rendition(jpeg, max_pixels=CAP) == (jpeg, "image/jpeg")  # the original
    png, media = web_rendition(scan, max_pixels=CAP)
    assert media == "image/png" and png.startswith(b"\x89PNG")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))),
                          decode_image(scan, max_pixels=CAP).pixels)
    assert preview_data_uri(decode_image(jpeg, max_pixels=CAP)) is None
    big = decode_image(ppm(grace_hopper().resize((1500, 1000))), max_pixels=CAP)
    uri = preview_data_uri(big)
    assert uri is not None and uri.startswith("data:image/png;base64,")
    shown = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert shown.size == (1200, 800)  # scaled to 1200 px a side at most
    with pytest.raises(ImageError):
        web_rendition(scan[:40], max_pixels=CAP)


# --- issue 12 part 12: a worker's peak memory is bounded, whatever the photo's size ---

def test_working_copy_bounds_pixels_and_keeps_small_images() -> None:
    big = np.zeros((4000, 6000, 3), dtype=np.uint8)
    small, scale = working_copy(big, 2_000_000)
    assert small.shape[0] * small.shape[1] <= 2_000_000 and small.shape[2] == 3
    assert abs(small.shape[1] / small.shape[0] - 1.5) < 0.01 and abs(scale - 0.2887) < 0.001
    photo = np.zeros((300, 400, 3), dtype=np.uint8)
    assert working_copy(photo, 2_000_000) == (photo, 1.0)


_PEAK = """
import json, sys
from pathlib import Path
from faceledger.faces.pipeline import FacePipeline
from faceledger.settings import Settings
pipe = FacePipeline.from_settings(Settings())
data = Path(sys.argv[1]).read_bytes()
pipe.process(Path(sys.argv[2]).read_bytes())  # models loaded and warmed up
Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM, the peak resident size
def vm(field):
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field))
    return int(line.split()[1]) // 1024
before = vm("VmRSS")
result = pipe.process(data)
print(json.dumps({"growth_mb": vm("VmHWM") - before, "width": result.width,
                  "boxes": [[f.box.left, f.box.top, f.box.right, f.box.bottom] for f in result.faces]}))
"""


def test_worker_peak_memory_is_bounded_on_a_photo_near_the_pixel_cap(tmp_path: Path) -> None:
    """A 24-megapixel photo (the detector would upsample it to 96 Mpx: 1.1 GB before the cap)
    grows a fresh worker by less than 550 MB (decoding ~7 bytes a pixel, the detector at most
    its 8 Mpx budget), and its face is still found, in the photo's own coordinates."""
    face = astronaut().crop((60, 0, 400, 300)).resize((1020, 900))
    canvas = Image.new("RGB", (5600, 4300), (128, 128, 128))
    canvas.paste(face, (3000, 2000))
    (tmp_path / "big.png").write_bytes(encode(canvas, "PNG", compress_level=1))
    (tmp_path / "warm.jpg").write_bytes(encode(grace_hopper()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    run = subprocess.run([sys.executable, "-c", _PEAK, str(tmp_path / "big.png"),
                          str(tmp_path / "warm.jpg")], env=dict(env, FACELEDGER_HOME=str(tmp_path)),
                         capture_output=True, text=True, timeout=600, check=True)
    got = json.loads(run.stdout)
    assert got["width"] == 5600 and len(got["boxes"]) == 1
    left, top, right, bottom = got["boxes"][0]
    assert 3000 < left < right < 4020 and 2000 < top < bottom < 2900  # on the pasted face
    assert got["growth_mb"] < 550, got
