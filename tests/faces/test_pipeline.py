"""The real dlib models on photos shipped in installed packages."""

from __future__ import annotations

import numpy as np
import pytest

from faceledger.errors import ConfigError, ModelMismatchError
from faceledger.faces.embed import Embedding, similarity
from faceledger.faces.models import available_models, load_model
from faceledger.faces.models.base import ModelOptions
from faceledger.faces.pipeline import FacePipeline
from faceledger.settings import Settings
from tests.photos import astronaut_face, collage, encode, grace_hopper, noise_image, variants


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return FacePipeline.from_settings(Settings())


def test_one_face_each(pipe: FacePipeline) -> None:
    a = pipe.process(encode(astronaut_face())).faces
    g = pipe.process(encode(grace_hopper())).faces
    assert len(a) == 1 and len(g) == 1
    face = a[0]
    assert face.embedding.model_id == "dlib-resnet-v1"
    assert face.embedding.vector.shape == (128,)
    assert abs(float(np.linalg.norm(face.embedding.vector)) - 1.0) < 1e-5
    assert len(face.landmarks) == 5
    assert face.quality.face_px >= 60 and face.quality.detector_score > 0
    assert face.thumbnail[:2] == b"\xff\xd8"  # a JPEG


def test_collage_has_two_faces_left_to_right(pipe: FacePipeline) -> None:
    faces = pipe.process(encode(collage())).faces
    assert len(faces) == 2
    assert faces[0].box.left < faces[1].box.left
    a = pipe.process(encode(astronaut_face())).faces[0].embedding
    g = pipe.process(encode(grace_hopper())).faces[0].embedding
    assert similarity(faces[0].embedding, a) > similarity(faces[0].embedding, g)
    assert similarity(faces[1].embedding, g) > similarity(faces[1].embedding, a)


def test_variants_stay_closer_than_another_person(pipe: FacePipeline) -> None:
    a = pipe.process(encode(astronaut_face())).faces[0].embedding
    g = pipe.process(encode(grace_hopper())).faces[0].embedding
    impostor = similarity(a, g)
    for name, data in variants(astronaut_face()).items():
        faces = pipe.process(data).faces
        assert len(faces) == 1, name
        assert similarity(faces[0].embedding, a) > impostor + 0.05, name


def test_no_face_in_noise(pipe: FacePipeline) -> None:
    assert pipe.process(noise_image()).faces == []


def test_cross_model_comparison_refused() -> None:
    v = np.ones(128, dtype=np.float32) / np.sqrt(128)
    with pytest.raises(ModelMismatchError, match="refusing to compare"):
        similarity(Embedding("dlib-resnet-v1", v), Embedding("other-model", v))


def test_registry_states_capabilities_and_refuses_unknown() -> None:
    caps = available_models()["dlib-resnet-v1"]
    assert caps.dim == 128 and "cnn" in caps.detectors and caps.landmarks == 5
    with pytest.raises(ConfigError, match="unknown face model"):
        load_model("no-such-model")


def test_model_loads_once_per_process() -> None:
    opts = ModelOptions("hog", 1, 0.0)
    assert load_model("dlib-resnet-v1", opts) is load_model("dlib-resnet-v1", opts)


def test_cnn_detector_finds_the_face() -> None:
    p = FacePipeline(load_model("dlib-resnet-v1", ModelOptions("cnn", 0, 0.0)),
                     max_pixels=10**7, max_bytes=None, max_faces=10, thumbnail_size=64)
    faces = p.process(encode(astronaut_face())).faces
    assert len(faces) == 1
    assert faces[0].box.left < 170 < faces[0].box.right  # the face, not the background


def test_jittered_embedding_stays_close_but_differs() -> None:
    plain = FacePipeline.from_settings(Settings()).process(encode(astronaut_face())).faces[0]
    jit = FacePipeline.from_settings(Settings(jitters=3)).process(encode(astronaut_face())).faces[0]
    sim = similarity(plain.embedding, jit.embedding)
    assert 0.98 < sim < 0.99999
