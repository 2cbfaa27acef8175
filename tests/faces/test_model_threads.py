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


def test_pool_copies_are_clones_of_the_first_and_detect_alike() -> None:
    """The HOG pool grows by unpickling its first detector (building one holds the GIL for a
    third of a second); each copy is a separate object that finds the same boxes and scores."""
    import dlib

    from faceledger.faces.models.dlib_backend import Instances

    built = 0

    def make() -> object:
        nonlocal built
        built += 1
        return dlib.get_frontal_face_detector()

    pool = Instances(make, most=3, clone=True)
    pixels = np.asarray(grace_hopper().convert("RGB"))
    with pool.use() as a, pool.use() as b, pool.use() as c:
        assert len({id(a), id(b), id(c)}) == 3
        runs = [d.run(pixels, 1, 0.0) for d in (a, b, c)]
    assert built == 1  # the other two were cloned
    for rects, scores, _ in runs[1:]:
        assert [(r.left(), r.top(), r.right(), r.bottom()) for r in rects] == [
            (r.left(), r.top(), r.right(), r.bottom()) for r in runs[0][0]]
        assert list(scores) == list(runs[0][1])
    assert len(runs[0][0]) >= 1
