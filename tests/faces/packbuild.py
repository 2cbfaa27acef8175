"""Tiny model packs built at test time with the ``onnx`` helper API (no weights are shipped).

* detector (``boxes_landmarks_v1``): input (1, 3, H, W); output (1, 15): one box at fixed
  fractions of the input (``BOX``), the five template points placed inside it, and a score of
  ``min(1, 4 * mean |x - mean(x)|)``, so a flat (blank) image scores 0 and holds no face;
* embedder (``embedding_v1``): input (N, 3, 112, 112); an 8x8 average pool, then a fixed
  random linear projection to ``DIM`` values.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from faceledger.faces.models.pack import ARCFACE_112

BOX = (0.25, 0.15, 0.75, 0.85)  # x1, y1, x2, y2 as fractions of the input's width and height
DIM = 128  # what the gallery handles today (faceledger/gallery hard-codes 128)
CHIP = 112


def _fractions() -> np.ndarray:
    x1, y1, x2, y2 = BOX
    marks = [(x1 + (x2 - x1) * x / CHIP, y1 + (y2 - y1) * y / CHIP) for x, y in ARCFACE_112]
    return np.array([x1, y1, x2, y2, *(c for p in marks for c in p)], np.float32)


def detector_model() -> Any:
    from onnx import TensorProto, helper, numpy_helper

    consts = {
        "starts": np.array([2], np.int64), "ends": np.array([4], np.int64),
        "pick": np.array([1, 0] * 7, np.int64),  # x coordinates use W, y coordinates use H
        "frac": _fractions(), "four": np.array(4.0, np.float32), "one": np.array(1.0, np.float32),
        "head": np.array([0], np.int64), "mid": np.array([4], np.int64),
        "tail": np.array([14], np.int64), "shape": np.array([1, 15], np.int64),
        "one_d": np.array([1], np.int64),
    }
    nodes = [
        helper.make_node("Shape", ["images"], ["shp"]),
        helper.make_node("Slice", ["shp", "starts", "ends"], ["hw_i"]),
        helper.make_node("Cast", ["hw_i"], ["hw"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["hw", "pick"], ["scale14"], axis=0),
        helper.make_node("Mul", ["scale14", "frac"], ["coords"]),
        helper.make_node("ReduceMean", ["images"], ["mu"], keepdims=1),
        helper.make_node("Sub", ["images", "mu"], ["dev"]),
        helper.make_node("Abs", ["dev"], ["adev"]),
        helper.make_node("ReduceMean", ["adev"], ["mad"], keepdims=0),
        helper.make_node("Mul", ["mad", "four"], ["s4"]),
        helper.make_node("Min", ["s4", "one"], ["s"]),
        helper.make_node("Reshape", ["s", "one_d"], ["score"]),
        helper.make_node("Slice", ["coords", "head", "mid"], ["box"]),
        helper.make_node("Slice", ["coords", "mid", "tail"], ["marks"]),
        helper.make_node("Concat", ["box", "score", "marks"], ["row"], axis=0),
        helper.make_node("Reshape", ["row", "shape"], ["detections"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny-detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT, [1, 15])],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    return _finish(graph)


def embedder_model(dim: int = DIM, seed: int = 7) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    pooled = 3 * (CHIP // 8) ** 2
    w = np.random.default_rng(seed).standard_normal((pooled, dim)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["input"], ["pool"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny-embedder",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, CHIP, CHIP])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])],
        [numpy_helper.from_array(w, "w")])
    return _finish(graph)


def _finish(graph: Any) -> Any:
    from onnx import checker, helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    checker.check_model(model)
    return model


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_for(folder: Path, name: str, version: str, dim: int = DIM, **over: Any) -> dict[str, Any]:
    files = [{"path": p.name, "sha256": sha256(p), "bytes": p.stat().st_size}
             for p in sorted(folder.glob("*.onnx"))]
    m: dict[str, Any] = {
        "format": "faceledger-model-pack/1", "name": name, "version": version,
        "licence": "test weights, made by the tests; non-commercial research only (like "
                   "InsightFace's pretrained weights)",
        "published_accuracy": "none: random projection (test pack)",
        "files": files,
        "detector": {"file": "det.onnx", "signature": "boxes_landmarks_v1",
                     "mean": [127.5] * 3, "std": [128.0] * 3, "score_threshold": 0.5},
        "embedder": {"file": "rec.onnx", "signature": "embedding_v1",
                     "mean": [127.5] * 3, "std": [127.5] * 3, "embedding_size": dim},
        "alignment": {"chip_size": CHIP, "template": [list(p) for p in ARCFACE_112]},
    }
    m.update(over)
    return m


def build_pack(folder: Path, name: str = "tiny-arc", version: str = "1.0", dim: int = DIM,
               **over: Any) -> Path:
    """A complete pack in ``folder`` (created) with ``dim``-d embeddings; ``over`` replaces
    manifest keys."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "det.onnx").write_bytes(detector_model().SerializeToString())
    (folder / "rec.onnx").write_bytes(embedder_model(dim).SerializeToString())
    write_manifest(folder, manifest_for(folder, name, version, dim, **over))
    return folder


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), "utf-8")


def zip_pack(folder: Path, archive: Path) -> str:
    """``folder`` as a zip with one top folder; returns the archive's SHA-256."""
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"{folder.name}/{p.name}")
    return sha256(archive)
