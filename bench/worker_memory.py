"""Peak resident memory of one ingest worker on hostile inputs (issue 12 part 12).

Each input is run in a fresh process that loads the face models as a worker does, then runs
``process_bytes`` on it; the process's peak RSS (VmHWM, reset after the models load) is reported,
with the resident size before the file. Inputs are made at run time, at the pixel cap
(``FACELEDGER_MAX_PIXELS``):

    python bench/worker_memory.py [--pixels N] [--only NAME] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from faceledger.settings import Settings


def _side(pixels: int, aspect: float = 4 / 3) -> tuple[int, int]:
    h = int(math.sqrt(pixels / aspect))
    return int(h * aspect), h


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def hostile(pixels: int) -> dict[str, bytes]:
    """Images just under the cap, in the modes that cost most to convert, and a bomb."""
    w, h = _side(pixels - 1)
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    rgb = Image.fromarray(np.tile(tile, (h // 256 + 1, w // 256 + 1, 1))[:h, :w])
    grey16 = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    return {
        "rgb.jpg": _save(rgb, "JPEG", quality=70),
        "cmyk.jpg": _save(rgb.convert("CMYK"), "JPEG", quality=70),
        "rgba.png": _save(rgb.convert("RGBA"), "PNG", compress_level=1),
        "grey16.png": _save(grey16, "PNG", compress_level=1),
        "float.tif": _save(rgb.convert("F"), "TIFF"),
        "palette.gif": _save(rgb.convert("P"), "GIF"),
        "bomb.png": _save(Image.new("L", (30_000, 30_000)), "PNG"),
    }


def _vm(field: str) -> int:
    """A /proc/self/status figure in KiB (VmRSS now, VmHWM the peak since the last reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _child(path: str) -> None:
    """Run in the fresh process: load the models, then process one file; print the figures."""
    from faceledger.faces.pipeline import FacePipeline
    from faceledger.gallery.ingest import process_bytes

    pipe = FacePipeline.from_settings(Settings())
    pipe.process(_save(Image.new("RGB", (64, 64)), "PNG"))  # everything loaded and warmed up
    data = Path(path).read_bytes()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (ru_maxrss survives exec)
    base = _vm("VmRSS")
    t0 = time.perf_counter()
    out = process_bytes(data, pipe)
    secs = time.perf_counter() - t0
    peak = _vm("VmHWM")
    print(json.dumps({"baseline_mb": round(base / 1024), "peak_mb": round(peak / 1024),
                      "seconds": round(secs, 2),
                      "result": out[0] if isinstance(out, tuple) else "processed"}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pixels", type=int, default=None, help="cap (default: the settings')")
    ap.add_argument("--only", default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child)
        return
    pixels = args.pixels or Settings().max_pixels
    env = dict(os.environ, FACELEDGER_MAX_PIXELS=str(pixels))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in hostile(pixels).items():
            if args.only and name != args.only:
                continue
            f = Path(tmp) / name
            f.write_bytes(data)
            del data
            run = subprocess.run([sys.executable, __file__, "--child", str(f)], env=env,
                                 capture_output=True, text=True, check=True)
            row = {"input": name, "bytes": f.stat().st_size, **json.loads(run.stdout)}
            rows.append(row)
            if not args.json:
                print(f"{name:<12} {row['bytes']:>11} B  baseline {row['baseline_mb']:>5} MB  "
                      f"peak {row['peak_mb']:>5} MB  {row['seconds']:>6} s  {row['result']}",
                      flush=True)
    if args.json:
        print(json.dumps({"max_pixels": pixels, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
