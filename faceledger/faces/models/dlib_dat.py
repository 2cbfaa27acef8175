"""A reader of dlib's own serialisation, enough for the face-recognition ResNet (pure numpy).

dlib writes a network with its ``serialize`` overloads (``dlib/serialize.h``, ``dlib/dnn/core.h``,
``dlib/dnn/layers.h``, ``dlib/dnn/input.h``):

* integers: one header byte (bits 0-3: how many little-endian value bytes follow, bit 7: negative);
* floats: a mantissa and an exponent, each such an integer (value = mantissa * 2**exponent);
* booleans: the character ``'1'`` or ``'0'``; strings: a length integer, then the bytes;
* tensors (``resizable_tensor``, version 2): version, num_samples, k, nr, nc, then raw little-endian
  float32 values; ``alias_tensor``: version 1, num_samples, k, nr, nc (a shape, no data).

A network is the loss layer (version 1, its details, then the subnetwork) around nested layers, each
written as its version, then its subnetwork, then its own details and state. So the file holds the
versions top to bottom (add_layer 2, tag and skip layers 1, the add_layer over the input 3), then the
input layer, then each computational layer's details in forward order. Tag and skip layers carry no
data (their ids live in the C++ type), which is why ``layers`` marks them as ``"marker"`` and the
graph builder checks the sequence against the known network definition.
"""

from __future__ import annotations

import bz2
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FLOAT_SPECIALS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


class DatFormatError(ValueError):
    """The file is not the dlib network serialisation this reader understands."""


@dataclass(frozen=True)
class Layer:
    """One layer in forward order: its dlib name, integer attributes and parameter tensors."""

    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc, marker
    attrs: dict[str, int] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class DlibNet:
    loss: str
    loss_params: tuple[float, ...]
    input_kind: str
    input_size: tuple[int, int]  # rows, columns
    means: tuple[float, float, float]  # per-channel (R, G, B) means subtracted from the input
    layers: list[Layer]  # forward order, input excluded


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read_byte(self) -> int:
        if self.pos >= len(self.data):
            raise DatFormatError("file ends early")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def read_int(self) -> int:
        head = self.read_byte()
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise DatFormatError(f"bad integer header {head:#x} at byte {self.pos - 1}")
        raw = self.read_take(size)
        value = int.from_bytes(raw, "little")
        return -value if head & 0x80 else value

    def read_take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DatFormatError("file ends early")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def read_float(self) -> float:
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent in FLOAT_SPECIALS:
            return FLOAT_SPECIALS[exponent]
        return math.ldexp(mantissa, exponent)

    def read_bool(self) -> bool:
        c = self.read_byte()
        if c not in (ord("0"), ord("1")):
            raise DatFormatError(f"bad boolean {c:#x} at byte {self.pos - 1}")
        return c == ord("1")

    def read_string(self) -> str:
        return self.read_take(self.read_int()).decode("latin-1")

    def read_tensor(self) -> np.ndarray:
        version = self.read_int()
        if version != 2:
            raise DatFormatError(f"tensor version {version} (only 2, raw float32, is read)")
        shape = tuple(self.read_int() for _ in range(4))
        count = math.prod(shape)
        return np.frombuffer(self.read_take(4 * count), dtype="<f4").reshape(shape).astype(np.float32)

    def read_alias(self) -> tuple[int, int, int, int]:
        version = self.read_int()
        if version != 1:
            raise DatFormatError(f"alias_tensor version {version}")
        n, k, nr, nc = (self.read_int() for _ in range(4))
        return n, k, nr, nc


def _split(params: np.ndarray, shapes: list[tuple[int, int, int, int]]) -> list[np.ndarray]:
    """Cut a layer's flat parameter tensor into its alias tensors, in order."""
    flat = params.reshape(-1)
    out, offset = [], 0
    for shape in shapes:
        n = math.prod(shape)
        out.append(flat[offset : offset + n].reshape(shape))
        offset += n
    if offset != flat.size:
        raise DatFormatError(f"parameters hold {flat.size} values, the shapes {shapes} {offset}")
    return out


def _con(r: _Reader, name: str) -> Layer:
    if name != "con_4":
        raise DatFormatError(f"convolution format {name!r} (only con_4 is read)")
    params = r.read_tensor()
    keys = ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    attrs = {k: r.read_int() for k in keys}
    filters, biases = r.read_alias(), r.read_alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.read_float()
    w, b = _split(params, [filters, biases])
    return Layer("con", attrs, {"filters": w, "biases": b.reshape(-1)})


def _affine(r: _Reader, name: str) -> Layer:
    if name not in ("affine_", "affine_2"):
        raise DatFormatError(f"affine format {name!r}")
    params = r.read_tensor()
    gamma, beta = r.read_alias(), r.read_alias()
    mode = r.read_int()
    if name == "affine_2":
        r.read_bool()  # disabled
    g, b = _split(params, [gamma, beta])
    return Layer("affine", {"mode": mode}, {"gamma": g.reshape(-1), "beta": b.reshape(-1)})


def _pool(r: _Reader, name: str) -> Layer:
    if name not in ("max_pool_2", "avg_pool_2"):
        raise DatFormatError(f"pooling format {name!r}")
    keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    return Layer(name[:-2], {k: r.read_int() for k in keys})


def _fc(r: _Reader, name: str) -> Layer:
    if name != "fc_2":
        raise DatFormatError(f"fc format {name!r} (only fc_2 is read)")
    attrs = {"num_outputs": r.read_int(), "num_inputs": r.read_int()}
    params = r.read_tensor()
    weights, biases = r.read_alias(), r.read_alias()
    attrs["no_bias"] = r.read_int()  # dlib's fc_bias_mode: FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.read_float()
    parts = _split(params, [weights] + ([] if attrs["no_bias"] else [biases]))
    tensors: dict[str, np.ndarray] = {
        "weights": parts[0].reshape(attrs["num_inputs"], attrs["num_outputs"])}
    if not attrs["no_bias"]:
        tensors["biases"] = parts[1].reshape(-1)
    return Layer("fc", attrs, tensors)


def _details(r: _Reader) -> Layer:
    name = r.read_string()
    if name.startswith("con_"):
        return _con(r, name)
    if name.startswith("affine_"):
        return _affine(r, name)
    if name.startswith(("max_pool_", "avg_pool_")):
        return _pool(r, name)
    if name.startswith("fc_"):
        return _fc(r, name)
    if name in ("relu_", "add_prev_"):
        return Layer(name.rstrip("_"))
    raise DatFormatError(f"unknown layer {name!r}")


def _layer_state(r: _Reader, version: int, bottom: bool) -> None:
    """Skip what add_layer writes after its details: flags and training tensors."""
    for _ in range(3):
        r.read_bool()
    r.read_tensor()  # x_grad
    r.read_tensor()  # cached_output
    if bottom:
        r.read_tensor()  # grad_final
        if version >= 3:
            r.read_int()  # sample expansion factor
    elif version == 2:
        r.read_tensor()  # params_grad


def _at_input(r: _Reader) -> bool:
    """Whether the next thing is the input layer's name (a string starting ``input``)."""
    size = r.data[r.pos] & 0x0F if r.pos < len(r.data) else 0
    start = r.pos + 1 + size
    return r.data[start : start + 5] == b"input"


def parse(data: bytes) -> DlibNet:
    """Parse a serialised ``loss_metric`` network (the face-recognition ResNet)."""
    r = _Reader(data)
    if r.read_int() != 1:
        raise DatFormatError("not a dlib add_loss_layer (version 1)")
    loss = r.read_string()
    loss_params = (r.read_float(), r.read_float()) if loss == "loss_metric_2" else ()
    if loss != "loss_metric_2":
        raise DatFormatError(f"loss {loss!r} (only loss_metric_2 is read)")
    versions: list[int] = []
    while True:  # the versions, top layer first, down to the add_layer over the input
        v = r.read_int()
        versions.append(v)
        if _at_input(r):
            break
        if v not in (1, 2):
            raise DatFormatError(f"unexpected layer version {v}")
    input_kind = r.read_string()
    if input_kind != "input_rgb_image_sized":
        raise DatFormatError(f"input layer {input_kind!r}")
    means = (r.read_float(), r.read_float(), r.read_float())
    size = (r.read_int(), r.read_int())
    layers: list[Layer] = []
    for i, v in enumerate(reversed(versions)):  # forward order
        if v == 1:
            layers.append(Layer("marker"))  # a tag or skip layer: nothing stored
            continue
        layers.append(_details(r))
        _layer_state(r, v, bottom=(i == 0))
    if r.pos != len(data):
        raise DatFormatError(f"{len(data) - r.pos} bytes left after the network")
    return DlibNet(loss, loss_params, input_kind, size, means, layers)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is a ``.bz2``."""
    raw = path.read_bytes()
    return bz2.decompress(raw) if raw[:3] == b"BZh" else raw


def load(path: Path) -> DlibNet:
    return parse(read_bytes(path))
