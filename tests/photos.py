"""Test photos from installed packages (never committed), and variants made from them."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image, ImageEnhance


def encode(img: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@cache
def astronaut() -> Image.Image:
    import skimage.data

    return Image.fromarray(skimage.data.astronaut())


@cache
def grace_hopper() -> Image.Image:
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return Image.open(str(path)).convert("RGB")


def astronaut_face() -> Image.Image:
    """The astronaut's head and shoulders (the full picture also holds a false detection)."""
    return astronaut().crop((60, 0, 400, 300))


def collage() -> Image.Image:
    """Two people side by side: the astronaut (left) and Grace Hopper (right)."""
    a = astronaut_face().resize((340, 300))
    g = grace_hopper().resize((256, 300))
    out = Image.new("RGB", (a.width + g.width + 20, 300), (255, 255, 255))
    out.paste(a, (0, 0))
    out.paste(g, (a.width + 20, 0))
    return out


def variants(img: Image.Image) -> dict[str, bytes]:
    """Edits a face search must see through."""
    w, h = img.size
    return {
        "mirror": encode(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "crop": encode(img.crop((int(w * 0.08), int(h * 0.05), int(w * 0.92), int(h * 0.97)))),
        "rescale": encode(img.resize((int(w * 0.6), int(h * 0.6)), Image.Resampling.LANCZOS)),
        "jpeg_q30": encode(img, quality=30),
        "brighter": encode(ImageEnhance.Brightness(img).enhance(1.4)),
        "darker": encode(ImageEnhance.Brightness(img).enhance(0.6)),
    }


def noise_image(seed: int = 0, size: int = 200) -> bytes:
    rng = np.random.default_rng(seed)
    return encode(Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)), "PNG")
