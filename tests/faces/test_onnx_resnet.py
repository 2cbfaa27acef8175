"""dlib's ResNet on ONNX Runtime: the .dat reader, the graph's agreement with dlib-bin, the cache.

Agreement is what keeps existing galleries valid: the ONNX embedder keeps the model id
``dlib-resnet-v1``, so its descriptors must be dlib's (issue 14, part 1)."""

from __future__ import annotations

import bz2
import itertools
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceledger.errors import ConfigError
from faceledger.faces.embed import normalise
from faceledger.faces.models import dlib_dat, onnx_resnet
from faceledger.faces.models.base import ModelOptions
from faceledger.faces.models.dlib_backend import (
    DlibAligner,
    DlibDetector,
    DlibEmbedder,
    make_embedder,
)
from faceledger.faces.models.onnx_resnet import OnnxResnetEmbedder
from tests.photos import astronaut_face, grace_hopper

CALIBRATION = Path(__file__).parents[2] / "faceledger" / "data" / "calibration.json"


@pytest.fixture(scope="module")
def net() -> dlib_dat.DlibNet:
    return dlib_dat.load(onnx_resnet.source_path())


@pytest.fixture(scope="module")
def embedder() -> OnnxResnetEmbedder:
    return OnnxResnetEmbedder(None, threads=1)


def _photos() -> dict[str, Image.Image]:
    out: dict[str, Image.Image] = {}
    for name, img in (("astronaut", astronaut_face()), ("hopper", grace_hopper())):
        w, h = img.size
        out[name] = img
        out[f"{name}-grey"] = img.convert("L").convert("RGB")
        out[f"{name}-rotated"] = img.rotate(12, resample=Image.Resampling.BICUBIC, expand=True)
        out[f"{name}-small"] = img.resize((w * 2 // 5, h * 2 // 5), Image.Resampling.LANCZOS)
        out[f"{name}-flipped"] = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out


@pytest.fixture(scope="module")
def chips() -> dict[str, np.ndarray]:
    detector, aligner = DlibDetector("hog", 1, 0.0), DlibAligner()
    out = {}
    for name, img in _photos().items():
        pixels = np.asarray(img.convert("RGB"))
        for i, det in enumerate(detector.detect(pixels)):
            out[f"{name}#{i}"] = aligner.align(pixels, det.box).chip
    return out


def test_reader_decodes_dlib_integers_floats_and_strings() -> None:
    r = dlib_dat._Reader(b"\x82\x2c\x01" b"\x01\x00" b"\x03\n\xd7\xa3\x81\x1c" b"\x01\x03abc" b"1")
    assert r.read_int() == -300  # header: 2 value bytes, negative
    assert r.read_int() == 0
    assert r.read_float() == pytest.approx(0.04, abs=1e-9)  # mantissa 0xa3d70a, exponent -28
    assert r.read_string() == "abc"
    assert r.read_bool() is True
    with pytest.raises(dlib_dat.DatFormatError):
        r.read_int()  # nothing left


def test_parser_finds_dlibs_face_network(net: dlib_dat.DlibNet) -> None:
    kinds = [layer.kind for layer in net.layers]
    assert net.loss == "loss_metric_2" and net.loss_params == pytest.approx((0.04, 0.6))
    assert net.input_kind == "input_rgb_image_sized" and net.input_size == (150, 150)
    assert net.means == pytest.approx((122.782, 117.001, 104.298), abs=1e-3)
    # 14 residual blocks: 10 with one tag, 4 downsampling ones with tag1, tag2 and skip1
    assert len(kinds) == 130 and kinds.count("con") == 29 and kinds.count("affine") == 29
    assert kinds.count("marker") == 22 and kinds.count("add_prev") == 14
    first, last = net.layers[0], net.layers[-1]
    assert first.tensors["filters"].shape == (32, 3, 7, 7) and first.tensors["biases"].shape == (32,)
    assert (first.attrs["stride_y"], first.attrs["padding_y"]) == (2, 0)
    assert last.kind == "fc" and last.tensors["weights"].shape == (256, 128)
    assert "biases" not in last.tensors and last.attrs["no_bias"] == 1
    convs = [layer for layer in net.layers if layer.kind == "con"]
    assert all(c.attrs["padding_y"] == (0 if c.attrs["stride_y"] == 2 else 1) for c in convs)
    weights = np.concatenate([t.ravel() for layer in net.layers for t in layer.tensors.values()])
    assert weights.size == 5_614_592 and np.isfinite(weights).all()


def test_parser_refuses_truncated_or_padded_files() -> None:
    data = dlib_dat.read_bytes(onnx_resnet.source_path())
    with pytest.raises(dlib_dat.DatFormatError, match="ends early"):
        dlib_dat.parse(data[:-1000])
    with pytest.raises(dlib_dat.DatFormatError, match="bytes left"):
        dlib_dat.parse(data + b"\x00")


def test_descriptors_equal_dlibs_on_the_test_photos(
        embedder: OnnxResnetEmbedder, chips: dict[str, np.ndarray]) -> None:
    assert len(chips) == 10  # one face in each photo and variant
    batch = np.stack(list(chips.values()))
    ours = embedder.descriptors(batch)
    dlib_net = DlibEmbedder()._net
    theirs = np.array([np.asarray(dlib_net.compute_face_descriptor(c)) for c in batch])
    assert np.abs(ours - theirs).max() <= 1e-4
    assert np.linalg.norm(ours, axis=1).min() > 1.2  # dlib's raw outputs, not normalised
    a, b = normalise(ours), normalise(theirs)
    assert (a * b).sum(axis=1).min() >= 0.99999
    calib = json.loads(CALIBRATION.read_text())["calibrations"][0]
    thresholds = [calib["threshold"]] + [row["threshold"] for row in calib["details"]["table"]]
    pairs = list(itertools.combinations(range(len(batch)), 2))
    changed = sum((float(a[i] @ a[j]) >= t) != (float(b[i] @ b[j]) >= t)
                  for i, j in pairs for t in thresholds)
    assert changed == 0, f"{changed} of {len(pairs) * len(thresholds)} decisions changed"


def test_embed_returns_normalised_embeddings_of_the_same_model(
        embedder: OnnxResnetEmbedder, chips: dict[str, np.ndarray]) -> None:
    from faceledger.faces.align import AlignedFace

    faces = [AlignedFace(landmarks=[], chip=c) for c in list(chips.values())[:3]]
    got = embedder.embed(faces)
    assert [e.model_id for e in got] == ["dlib-resnet-v1"] * 3
    assert np.allclose([np.linalg.norm(e.vector) for e in got], 1.0, atol=1e-5)
    assert embedder.embed([]) == []
    with pytest.raises(ValueError, match="150"):
        embedder.descriptors(np.zeros((1, 112, 112, 3), dtype=np.uint8))


def test_batch_of_one_equals_batch_of_eight(
        embedder: OnnxResnetEmbedder, chips: dict[str, np.ndarray]) -> None:
    batch = np.stack((list(chips.values()) * 2)[:8])
    together = embedder.descriptors(batch)
    alone = np.concatenate([embedder.descriptors(batch[i : i + 1]) for i in range(8)])
    assert together.shape == (8, 128)
    assert np.abs(together - alone).max() <= 1e-6


def test_cache_is_built_once_private_and_rebuilt_for_another_source(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    source = onnx_resnet.source_path()
    path = onnx_resnet.prepare(cache, source)
    assert path.name == f"dlib_resnet_v1-{onnx_resnet.source_digest(source)[:16]}.onnx"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.utime(path, (1_000_000, 1_000_000))
    assert onnx_resnet.prepare(cache, source) == path
    assert path.stat().st_mtime == 1_000_000  # reused, not rebuilt
    other = tmp_path / "weights.dat.bz2"  # same network, different bytes: another hash
    other.write_bytes(bz2.compress(source.read_bytes(), compresslevel=1))
    rebuilt = onnx_resnet.prepare(cache, other)
    assert rebuilt != path and rebuilt.is_file() and not path.exists()
    assert sorted(p.name for p in cache.iterdir()) == [rebuilt.name]


def test_settings_choose_the_runtime(tmp_path: Path) -> None:
    default = make_embedder(ModelOptions(cache_dir=str(tmp_path)))
    assert isinstance(default, OnnxResnetEmbedder)
    assert list(tmp_path.glob("dlib_resnet_v1-*.onnx"))  # built into the cache folder
    assert isinstance(make_embedder(ModelOptions(embed_runtime="dlib")), DlibEmbedder)
    jittered = make_embedder(ModelOptions(jitters=3))
    assert isinstance(jittered, DlibEmbedder) and jittered.jitters == 3
    with pytest.raises(ConfigError):
        make_embedder(ModelOptions(embed_runtime="tflite"))


def test_cli_models_prepare_builds_into_the_data_home(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from faceledger.cli.main import app

    monkeypatch.setenv("FACELEDGER_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["models", "prepare", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    path = Path(report["path"])
    assert path.parent == (tmp_path / "home" / "models").resolve() and path.is_file()
    assert report["bytes"] == path.stat().st_size
    assert report["agreement"]["chips"] >= 2 and report["agreement"]["min_cosine"] >= 0.99999
    listing = CliRunner().invoke(app, ["models"])
    assert listing.exit_code == 0 and "dlib-resnet-v1" in json.loads(listing.output)
