"""dlib's MMOD face detector file (``mmod_human_face_detector.dat``) and its image pyramid.

Private to ``onnx_mmod``. The reader follows dlib's own serialisation: an integer is a header
byte (low nibble: byte count, 0x80: negative) and that many little-endian bytes; a float or
double is a (mantissa, exponent) pair of integers; a tensor is version 2, four dimensions and
raw little-endian float32 values. The loss layer comes first, then the layers in forward order.
The pyramid code mirrors dlib's ``input_rgb_image_pyramid<pyramid_down<6>>``: a tiled image
(padding 10, outer padding 11), each level a bilinear resize of the one before, in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PAD = 10
OUTER_PAD = 11
MIN_LEVEL_HEIGHT = 5


class _Reader:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.pos = offset

    def integer(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def text(self) -> str:
        size = self.integer()
        value = self.data[self.pos:self.pos + size].decode("ascii")
        self.pos += size
        return value

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        return float(mantissa * 2.0 ** exponent)

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise ValueError(f"unexpected tensor version {version} at byte {self.pos}")
        shape = [self.integer() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.pos).astype(np.float32)
        self.pos += 4 * count
        return values

    def skip_alias(self) -> None:
        for _ in range(5):
            self.integer()


@dataclass
class MmodWeights:
    """Everything the detector needs from the file: folded conv layers and the loss options."""

    avg_rgb: tuple[float, float, float]
    window: tuple[int, int]  # detector window width, height
    nms_iou: float
    nms_covered: float
    # (weights OIHW, bias, stride, padding, relu_after) per conv layer, batch norm folded in
    convs: list[tuple[np.ndarray, np.ndarray, int, int, bool]] = field(default_factory=list)


def _find(data: bytes, tag: str, start: int) -> int:
    needle = bytes([0x01, len(tag)]) + tag.encode("ascii")
    return data.find(needle, start)


def _read_con(r: _Reader) -> tuple[np.ndarray, np.ndarray, int, int]:
    params = r.tensor()
    filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (r.integer() for _ in range(7))
    if stride_y != stride_x or pad_y != pad_x or rows != cols:
        raise ValueError("unsupported convolution shape in the MMOD file")
    channels = (params.size - filters) // (filters * rows * cols)
    weights = params[: filters * channels * rows * cols].reshape(filters, channels, rows, cols)
    return weights, params[-filters:].copy(), stride_y, pad_y


def _read_bn(r: _Reader) -> tuple[np.ndarray, np.ndarray]:
    """A ``bn_con2`` layer as dlib's affine_ sees it: scale and shift per channel."""
    params = r.tensor()
    half = params.size // 2
    gamma, beta = params[:half].astype(np.float64), params[half:].astype(np.float64)
    r.skip_alias()
    r.skip_alias()
    r.tensor()  # batch means
    r.tensor()  # batch inverse standard deviations
    running_means = r.tensor().astype(np.float64)
    running_vars = r.tensor().astype(np.float64)
    r.integer()  # num_updates
    r.integer()  # running_stats_window_size
    eps = [r.real() for _ in range(5)][-1]
    scale = gamma / np.sqrt(running_vars + eps)
    return scale, beta - scale * running_means


def _read_header(r: _Reader, weights_avg: list[float]) -> tuple[tuple[int, int], float, float]:
    if r.integer() != 1 or r.text() != "loss_mmod_":
        raise ValueError("not a dlib MMOD network file")
    if r.integer() != 1:
        raise ValueError("unsupported mmod_options version")
    width, height = r.integer(), r.integer()
    r.real()  # loss_per_false_alarm
    r.real()  # loss_per_missed_target
    r.real()  # truth_match_iou_threshold
    nms_iou, nms_covered = r.real(), r.real()
    start = _find(r.data, "input_rgb_image_pyramid", r.pos)
    if start < 0:
        raise ValueError("input_rgb_image_pyramid layer not found")
    r.pos = start
    if r.text() != "input_rgb_image_pyramid":
        raise ValueError("unsupported input layer version")
    weights_avg.extend(r.real() for _ in range(3))
    return (width, height), nms_iou, nms_covered


def parse_mmod(data: bytes) -> MmodWeights:
    """Read the conv net, the input means and the loss options from the .dat bytes."""
    r = _Reader(data)
    avg: list[float] = []
    window, nms_iou, nms_covered = _read_header(r, avg)
    out = MmodWeights((avg[0], avg[1], avg[2]), window, nms_iou, nms_covered)
    pos = r.pos
    while True:
        con_at = _find(data, "con_4", pos)
        if con_at < 0:
            break
        r.pos = con_at
        r.text()
        w, b, stride, pad = _read_con(r)
        relu = False
        bn_at = _find(data, "bn_con2", r.pos)
        next_con = _find(data, "con_4", r.pos)
        if bn_at >= 0 and (next_con < 0 or bn_at < next_con):
            r.pos = bn_at
            r.text()
            scale, shift = _read_bn(r)
            w = (w.astype(np.float64) * scale[:, None, None, None]).astype(np.float32)
            b = (b.astype(np.float64) * scale + shift).astype(np.float32)
            relu = True
        out.convs.append((w, b, stride, pad, relu))
        pos = r.pos
    if len(out.convs) != 7:
        raise ValueError(f"expected 7 conv layers in the MMOD file, found {len(out.convs)}")
    return out


# ---------------------------------------------------------------------------------- pyramid


Rect = tuple[int, int, int, int]  # left, top, right, bottom (inclusive, as dlib)


def pyramid_rects(nr: int, nc: int) -> tuple[list[Rect], int, int]:
    """dlib's compute_tiled_image_pyramid_details for pyramid_down<6>: level rects, NR, NC."""
    if nr * nc == 0:
        return [], 0, 0
    sizes = [(nr, nc)]
    while True:
        nr, nc = math.floor(5 / 6 * nr), math.floor(5 / 6 * nc)
        if nr * nc == 0 or nr < MIN_LEVEL_HEIGHT:
            break
        sizes.append((nr, nc))
    total = sum(h + PAD for h, _ in sizes) - 2 * PAD
    height, prev_width = 0, 0
    h0, w0 = sizes[0]
    for h, w in sizes:
        if w <= w0 - prev_width - PAD and (height - h0) * 2 >= total - h0:
            break
        height += h + PAD
        prev_width = w
    height -= PAD
    rects: list[Rect] = []
    y, i = OUTER_PAD, 0
    while y < height + OUTER_PAD and i < len(sizes):
        h, w = sizes[i]
        rects.append((OUTER_PAD, y, OUTER_PAD + w - 1, y + h - 1))
        y += h + PAD
        i += 1
    y -= PAD
    first = rects[0]
    while i < len(sizes):
        h, w = sizes[i]
        x1, y1 = OUTER_PAD + w0 - 1, y - 1
        rect = (x1 - (w - 1), y1 - (h - 1), x1, y1)
        if not (rect[2] < first[0] or rect[0] > first[2] or rect[3] < first[1] or rect[1] > first[3]):
            break
        rects.append(rect)
        y -= h + PAD
        i += 1
    return rects, height + 2 * OUTER_PAD, w0 + 2 * OUTER_PAD


def _column_plan(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Column indexes and float32 fractions as dlib's SSE resize computes them.

    Returns left, right, fraction (float32 for the SIMD part, float64 after), and the first
    column handled by the scalar tail loop.
    """
    scale = (n_in - 1) / max(n_out - 1, 1)
    chunks = (n_out + 3) // 4 + 1
    start = np.array([-4 * scale + t * scale for t in range(4)], dtype=np.float64)
    steps = np.full((chunks + 1, 4), np.float32(4 * scale), dtype=np.float32)
    steps[0] = start.astype(np.float32)
    xs = np.add.accumulate(steps, axis=0, dtype=np.float32)[1:].reshape(-1)
    left = xs.astype(np.int64)  # truncation, as _mm_cvttps_epi32
    ok = (left.reshape(chunks, 4)[:, 3] + 1) < n_in
    simd_chunks = int(np.argmin(ok)) if not ok.all() else chunks
    simd_end = min(simd_chunks * 4, n_out)
    frac32 = xs - left.astype(np.float32)
    cols = np.arange(n_out)
    tail_x = -scale + cols * scale + scale  # x = -scale + c*scale, then x += scale
    tail_left = np.floor(tail_x).astype(np.int64)
    left_all = np.where(cols < simd_end, left[:n_out], tail_left)
    right_all = np.where(cols < simd_end, left_all + 1, np.minimum(tail_left + 1, n_in - 1))
    frac = np.where(cols < simd_end, frac32[:n_out].astype(np.float64), tail_x - tail_left)
    return left_all, right_all, frac, simd_end


def _row_plan(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = (n_in - 1) / max(n_out - 1, 1)
    steps = np.full(n_out, scale, dtype=np.float64)
    steps[0] = 0.0
    ys = np.add.accumulate(steps)
    top = np.floor(ys).astype(np.int64)
    return top, np.minimum(top + 1, n_in - 1), ys - top


def resize_bilinear(src: np.ndarray, rows: int, cols: int, *, to_uint8: bool) -> np.ndarray:
    """dlib's resize_image(interpolate_bilinear) for channel-first float or uint8 images."""
    n_in_r, n_in_c = src.shape[-2:]
    top, bottom, tb = _row_plan(n_in_r, rows)
    left, right, lr, simd_end = _column_plan(n_in_c, cols)
    s = src.astype(np.float32)
    tl, tr = s[:, top][:, :, left], s[:, top][:, :, right]
    bl, br = s[:, bottom][:, :, left], s[:, bottom][:, :, right]
    tb32 = tb.astype(np.float32)[:, None]
    itb32 = (1.0 - tb).astype(np.float32)[:, None]
    lr32 = lr.astype(np.float32)[None, :]
    ilr32 = np.float32(1.0) - lr32
    fast = ((itb32 * ilr32) * tl + (itb32 * lr32) * tr) + (tb32 * ilr32) * bl + (tb32 * lr32) * br
    tb64, lr64 = tb[:, None], lr[None, :]
    slow = (1 - tb64) * ((1 - lr64) * tl + lr64 * tr) + tb64 * ((1 - lr64) * bl + lr64 * br)
    out = np.where(np.arange(cols)[None, None, :] < simd_end, fast, slow.astype(np.float32))
    if to_uint8:
        return np.clip(np.trunc(out), 0, 255).astype(np.uint8)
    return out.astype(np.float32)
