"""dlib's face-recognition ResNet as an ONNX graph, run by ONNX Runtime.

The graph is built from the installed ``.dat`` weights (``dlib_dat.parse``) following dlib's own
network definition (``anet_type`` in dlib's ``dnn_face_recognition_ex.cpp``), so its descriptors
equal dlib's: the model id stays ``dlib-resnet-v1`` and existing galleries stay valid. The graph
is cached at ``<home>/models/dlib_resnet_v1-<16 hex of the .dat's SHA-256>.onnx`` (mode 0600),
rebuilt when the source's hash changes, never committed and never downloaded.

Network semantics that had to match dlib: the input is RGB minus the per-channel means stored in
the file, divided by 256; convolutions pad 0 at stride 2 and 1 at 3x3 stride 1 (as stored);
``affine`` is the folded batch norm (x * gamma + beta per channel); a downsampling residual adds
avg_pool(x) and the block's output, the smaller zero-padded at the end of each dimension (dlib's
``add_prev``); the head is a global average pool and a 256 -> 128 fc without bias; no final
normalisation (faceledger L2-normalises afterwards, in ``faces/embed.py``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceledger.faces.embed import Embedding, normalise
from faceledger.faces.models import dlib_dat

if TYPE_CHECKING:
    from faceledger.faces.align import AlignedFace

MODEL_ID = "dlib-resnet-v1"
FILE_STEM = "dlib_resnet_v1"
CHIP = 150
OPSET = 17
MAX_BATCH = 256  # faces per session.run (bounds the activations' memory)


def _block(down: bool) -> list[str]:
    """One residual block of anet_type, in forward order (dlib's tag1/tag2/skip1 named)."""
    body = ["tag1", "con", "affine", "relu", "con", "affine"]
    if down:  # add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,BN,2,tag1<SUBNET>>>>>>
        return [*body, "tag2", "skip1", "avg_pool", "add_prev2", "relu"]
    return [*body, "add_prev1", "relu"]  # add_prev1<block<N,BN,1,tag1<SUBNET>>>


def anet_layers() -> list[str]:
    """dlib's ``anet_type`` from the input up (the definition the weights were trained with)."""
    seq = ["con", "affine", "relu", "max_pool"]
    seq += _block(False) * 3  # alevel4: 32 filters
    seq += _block(True) + _block(False) * 3  # alevel3: 64
    seq += _block(True) + _block(False) * 2  # alevel2: 128
    seq += _block(True) + _block(False) * 2  # alevel1: 256
    seq += _block(True)  # alevel0: 256
    return [*seq, "avg_pool", "fc"]


def _stored_kind(name: str) -> str:
    if name.startswith(("tag", "skip")):
        return "marker"
    return "add_prev" if name.startswith("add_prev") else name


class _Graph:
    """Builds the ONNX nodes while tracking each tensor's (channels, rows, columns)."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.shape: dict[str, tuple[int, int, int]] = {}
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        name = self.name(prefix)
        self.inits.append(self.numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple[int, int, int], **attrs: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attrs))
        self.shape[out] = shape
        return out

    def con(self, x: str, layer: dlib_dat.Layer) -> str:
        a, (_, h, w) = layer.attrs, self.shape[x]
        oh = (h + 2 * a["padding_y"] - a["nr"]) // a["stride_y"] + 1
        ow = (w + 2 * a["padding_x"] - a["nc"]) // a["stride_x"] + 1
        inputs = [x, self.const("w", layer.tensors["filters"]), self.const("b", layer.tensors["biases"])]
        return self.node("Conv", inputs, (a["num_filters"], oh, ow),
                         kernel_shape=[a["nr"], a["nc"]], strides=[a["stride_y"], a["stride_x"]],
                         pads=[a["padding_y"], a["padding_x"], a["padding_y"], a["padding_x"]])

    def affine(self, x: str, layer: dlib_dat.Layer) -> str:
        if layer.attrs["mode"] != 0:
            raise dlib_dat.DatFormatError("affine layer not in convolution mode")
        c = self.shape[x][0]
        gamma = self.const("gamma", layer.tensors["gamma"].reshape(1, c, 1, 1))
        beta = self.const("beta", layer.tensors["beta"].reshape(1, c, 1, 1))
        return self.node("Add", [self.node("Mul", [x, gamma], self.shape[x]), beta], self.shape[x])

    def pool(self, x: str, layer: dlib_dat.Layer) -> str:
        a, (c, h, w) = layer.attrs, self.shape[x]
        if a["nr"] == 0 and a["nc"] == 0:  # avg_pool_everything
            return self.node("GlobalAveragePool", [x], (c, 1, 1))
        if a["padding_y"] or a["padding_x"]:
            raise dlib_dat.DatFormatError("padded pooling is not supported")
        oh = (h - a["nr"]) // a["stride_y"] + 1
        ow = (w - a["nc"]) // a["stride_x"] + 1
        op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
        return self.node(op, [x], (c, oh, ow), kernel_shape=[a["nr"], a["nc"]],
                         strides=[a["stride_y"], a["stride_x"]])

    def pad_to(self, x: str, shape: tuple[int, int, int]) -> str:
        """Zero-pad at the end of each dimension (dlib's tt::add on tensors of unequal size)."""
        if self.shape[x] == shape:
            return x
        extra = [s - t for s, t in zip(shape, self.shape[x], strict=True)]
        pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)
        return self.node("Pad", [x, self.const("pads", pads)], shape, mode="constant")

    def add(self, a: str, b: str) -> str:
        shape = tuple(max(p, q) for p, q in zip(self.shape[a], self.shape[b], strict=True))
        full = (shape[0], shape[1], shape[2])
        return self.node("Add", [self.pad_to(a, full), self.pad_to(b, full)], full)

    def fc(self, x: str, layer: dlib_dat.Layer) -> str:
        flat = self.node("Flatten", [x], self.shape[x], axis=1)
        n_out = layer.attrs["num_outputs"]
        out = self.node("MatMul", [flat, self.const("fc", layer.tensors["weights"])], (n_out, 1, 1))
        if "biases" in layer.tensors:
            out = self.node("Add", [out, self.const("fcb", layer.tensors["biases"])], (n_out, 1, 1))
        return out


def _input(g: _Graph, net: dlib_dat.DlibNet) -> str:
    """uint8 NHWC RGB chips -> (pixel - mean) / 256, NCHW float32 (dlib's input_rgb_image)."""
    means = np.array(net.means, dtype=np.float32)
    rows, cols = net.input_size
    x = g.node("Cast", ["chips"], (rows, cols, 3), to=1)
    x = g.node("Sub", [x, g.const("means", means)], (rows, cols, 3))
    x = g.node("Div", [x, g.const("scale", np.array(256.0, dtype=np.float32))], (rows, cols, 3))
    return g.node("Transpose", [x], (3, rows, cols), perm=[0, 3, 1, 2])


def build_model(net: dlib_dat.DlibNet) -> Any:
    """The ONNX ModelProto for the parsed network; refuses any network but anet_type."""
    from onnx import TensorProto, checker, helper

    plan = anet_layers()
    stored = [layer.kind for layer in net.layers]
    if [_stored_kind(p) for p in plan] != stored:
        raise dlib_dat.DatFormatError("the .dat file is not dlib's face-recognition ResNet (anet_type)")
    g = _Graph()
    x = _input(g, net)
    tags: dict[str, str] = {}
    for name, layer in zip(plan, net.layers, strict=True):
        if name.startswith("tag"):
            tags[name[3:]] = x
        elif name.startswith("skip"):
            x = tags[name[4:]]
        elif name.startswith("add_prev"):
            x = g.add(x, tags[name[8:]])
        elif name == "relu":
            x = g.node("Relu", [x], g.shape[x])
        else:
            x = {"con": g.con, "affine": g.affine, "fc": g.fc}.get(name, g.pool)(x, layer)
    g.nodes[-1].output[0] = "descriptors"
    rows, cols = net.input_size
    graph = helper.make_graph(
        g.nodes, "dlib_resnet_v1",
        [helper.make_tensor_value_info("chips", TensorProto.UINT8, ["n", rows, cols, 3])],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["n", 128])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="faceledger")
    model.ir_version = 8
    checker.check_model(model)
    return model


def source_path() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


def source_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_path(cache_dir: Path, digest: str) -> Path:
    return cache_dir / f"{FILE_STEM}-{digest[:16]}.onnx"


def model_bytes(source: Path | None = None) -> bytes:
    """The serialised ONNX graph built from ``source`` (default: the installed weights)."""
    net = dlib_dat.load(source or source_path())
    data: bytes = build_model(net).SerializeToString()
    return data


def prepare(cache_dir: Path, source: Path | None = None) -> Path:
    """The cached graph for ``source``, built first when absent; stale builds are removed."""
    source = source or source_path()
    target = cache_path(cache_dir, source_digest(source))
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".onnx", dir=cache_dir)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model_bytes(source))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    for old in cache_dir.glob(f"{FILE_STEM}-*.onnx"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build offers it, else the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


_SESSIONS: dict[tuple[str, int, tuple[str, ...]], Any] = {}
_LOCK = threading.Lock()


def session(cache_dir: Path | None, threads: int, providers: Sequence[str] | None = None) -> Any:
    """One ONNX Runtime session per process and configuration (run() is thread-safe)."""
    import onnxruntime as ort

    chosen = tuple(providers or default_providers())
    with _LOCK:
        try:
            source = prepare(cache_dir) if cache_dir is not None else None
        except OSError as exc:  # a read-only data home: build in memory instead
            logging.getLogger(__name__).warning("cannot cache the ONNX graph in %s (%s); "
                                                "building it in memory", cache_dir, exc)
            source = None
        key = (str(source or ":memory:"), threads, chosen)
        if key not in _SESSIONS:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            model: str | bytes = str(source) if source is not None else model_bytes()
            _SESSIONS[key] = ort.InferenceSession(model, sess_options=opts, providers=list(chosen))
        return _SESSIONS[key]


@dataclass
class OnnxResnetEmbedder:
    """dlib's ResNet on ONNX Runtime: the same ``embed(faces)`` as ``DlibEmbedder``, batched.

    ``cache_dir`` None builds the graph in memory (nothing written)."""

    cache_dir: Path | None = None
    threads: int = 1
    providers: Sequence[str] | None = None
    model_id: str = MODEL_ID
    dim: int = 128

    def __post_init__(self) -> None:
        self._session = session(self.cache_dir, self.threads, self.providers)

    @property
    def active_providers(self) -> list[str]:
        out: list[str] = self._session.get_providers()
        return out

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """Raw network outputs (dlib's descriptors, not normalised) for (N, 150, 150, 3) uint8."""
        if chips.ndim != 4 or chips.shape[1:] != (CHIP, CHIP, 3):
            raise ValueError(f"face chips must be (N, {CHIP}, {CHIP}, 3), not {chips.shape}")
        chips = np.ascontiguousarray(chips, dtype=np.uint8)
        parts = [self._session.run(["descriptors"], {"chips": chips[i : i + MAX_BATCH]})[0]
                 for i in range(0, len(chips), MAX_BATCH)]
        return np.concatenate(parts).astype(np.float32)

    def embed(self, faces: Sequence[AlignedFace]) -> list[Embedding]:
        if not faces:
            return []
        raw = self.descriptors(np.stack([np.asarray(f.chip) for f in faces]))
        return [Embedding(self.model_id, v) for v in normalise(raw)]


def _sample_chips() -> np.ndarray:
    """Chips for the agreement check: Grace Hopper's face (matplotlib's sample photo, aligned
    by dlib) when it is installed, and a fixed pseudo-random chip."""
    from faceledger.faces.models.dlib_backend import DlibAligner, DlibDetector

    chips = [np.random.default_rng(14).integers(0, 256, (CHIP, CHIP, 3), dtype=np.uint8)]
    try:
        import matplotlib.cbook
        from PIL import Image

        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        pixels = np.asarray(Image.open(str(path)).convert("RGB"))
    except (ImportError, OSError, ValueError):
        return np.stack(chips)
    dets = DlibDetector("hog", 1, 0.0).detect(pixels)
    aligner = DlibAligner()
    return np.stack([aligner.align(pixels, d.box).chip for d in dets] + chips)


def agreement(embedder: OnnxResnetEmbedder, chips: np.ndarray | None = None) -> dict[str, float]:
    """ONNX Runtime's descriptors against dlib-bin's on the same chips."""
    from faceledger.faces.models.dlib_backend import DlibEmbedder

    chips = _sample_chips() if chips is None else chips
    ours = embedder.descriptors(chips)
    net = DlibEmbedder()._net
    theirs = np.array([np.asarray(v) for v in net.compute_face_descriptor(list(chips))],
                      dtype=np.float32)
    a, b = normalise(ours), normalise(theirs)
    return {"chips": len(chips), "max_abs_diff": float(np.abs(ours - theirs).max()),
            "max_euclidean": float(np.linalg.norm(ours - theirs, axis=1).max()),
            "min_cosine": float((a * b).sum(axis=1).min())}


def prepare_report(cache_dir: Path) -> dict[str, Any]:
    """Build (or find) the cached graph and check it against dlib: for ``models prepare``."""
    source = source_path()
    path = prepare(cache_dir, source)
    embedder = OnnxResnetEmbedder(cache_dir)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": source_digest(path),
            "source": str(source), "source_sha256": source_digest(source),
            "providers": embedder.active_providers, "agreement": agreement(embedder)}
