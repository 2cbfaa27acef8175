"""The server runs requests in a thread pool and shares one model: dlib objects must not be used
from two threads at once (dlib's rule; doing so crashed the process with a segfault)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from faceledger.faces.models.base import ModelOptions, load_model
from tests.photos import astronaut_face, grace_hopper


def test_one_model_used_from_many_threads_gives_the_single_thread_answers() -> None:
    model = load_model("dlib-resnet-v1", ModelOptions())
    photos = [np.asarray(p.convert("RGB")) for p in (astronaut_face(), grace_hopper())]

    def run(pixels: np.ndarray) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
        dets = model.detector.detect(pixels)
        faces = [model.aligner.align(pixels, d.box) for d in dets]
        vecs = model.embedder.embed(faces)
        return [(d.box.left, d.box.top, d.box.right, d.box.bottom) for d in dets], np.stack(
            [v.vector for v in vecs])

    expected = [run(p) for p in photos]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(run, photos * 12))
    for i, (boxes, vecs) in enumerate(got):
        want_boxes, want_vecs = expected[i % 2]
        assert boxes == want_boxes
        assert np.allclose(vecs, want_vecs, atol=1e-5)
