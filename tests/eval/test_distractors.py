"""Identification with distractors, with images that have no face counted as failures, and with
byte-identical probe/gallery pairs flagged (issue 14 part 7): synthetic embeddings with known
answers, the distractor folder rules on real files, and the model card's threshold section."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceledger.eval import card as card_mod
from faceledger.eval.distractors import prepare, select, sha256_files, walk_images
from faceledger.eval.embedset import EmbedSet
from faceledger.eval.identify import Protocol, evaluate_identification
from tests.eval.synth import clustered, embed_set

E = np.eye(8)


def two_people() -> EmbedSet:
    """A and B enrolled (first image), one probe each; U unenrolled (two non-mated probes)."""
    return embed_set([
        ("A/A_0001.jpg", list(E[0])), ("A/A_0002.jpg", list(0.8 * E[0] + 0.6 * E[1])),
        ("B/B_0001.jpg", list(E[2])), ("B/B_0002.jpg", list(0.9 * E[2] + 0.1 * E[3])),
        ("U/U_0001.jpg", list(E[5])), ("U/U_0002.jpg", list(E[6])),
    ])


def distractor_set(items: list[tuple[str, list[float]]]) -> EmbedSet:
    es = embed_set(items)
    es.identities = np.array(es.paths, dtype=str)  # unlabelled: one identity per image
    return es


PROTOCOL = Protocol(seed=0, unenrolled_fraction=1 / 3, gallery_sizes=(None,), max_rank=5)


def test_a_distractor_close_to_a_probe_pushes_its_mate_to_rank_2() -> None:
    es = two_people()
    base = evaluate_identification(es, PROTOCOL).sizes[0].as_dict()
    assert base["gallery_size"] == 2 and base["rank1"] == 1.0
    # X scores 0.96 with A's probe (its mate scores 0.8); Y is far from everyone
    d = distractor_set([("x.jpg", list(0.6 * E[0] + 0.8 * E[1])), ("y.jpg", list(E[7]))])
    rep = evaluate_identification(es, PROTOCOL, distractors=d, threshold=0.9,
                                  threshold_source="test")
    g = rep.sizes[0].as_dict()
    assert g["gallery_size"] == 4 and g["distractors"] == 2 and g["gallery"] == "all (4)"
    assert g["rank1"] == 0.5 and g["rank5"] == 1.0
    # the two distractors are also non-mated searches, each without itself in the gallery
    assert g["nonmated_searches"] == 4 and g["nonmated_from_distractors"] == 2
    assert rep.counts["external_distractors"] == 2
    # A's probe: its mate (0.8) is below the threshold and not at rank 1 anyway
    assert g["operating_threshold"]["fnir"] == 0.5
    # X against A_0001 scores 0.6, below 0.9: no false positive from the distractor searches
    assert g["operating_threshold"]["fpir"] == 0.0


def test_distractor_searches_leave_only_their_own_identity_out() -> None:
    es = two_people()
    # a labelled distractor identity "D" with two images close to each other, and far from A/B
    d = embed_set([("D/1.jpg", list(E[4])), ("D/2.jpg", list(E[4] + 0.05 * E[7])),
                   ("Z/1.jpg", list(E[4] + 0.02 * E[6]))])
    g = evaluate_identification(es, PROTOCOL, distractors=d, threshold=0.9,
                                threshold_source="test").sizes[0].as_dict()
    # D's images do not hit each other, but both hit Z (another identity): 2 false positives,
    # and Z hits D: 3 of the 5 non-mated searches (2 from U, 3 distractors)
    assert g["nonmated_searches"] == 5
    assert g["operating_threshold"]["fpir"] == pytest.approx(3 / 5)


def test_unsupported_flags_disappear_once_the_gallery_is_big_enough() -> None:
    es = clustered(20, [3, 1], noise=0.05)
    small = evaluate_identification(es, Protocol(gallery_sizes=(None,))).sizes[0].as_dict()
    assert not small["fnir_at_fpir"]["0.01"]["supported"]  # 15 non-mated searches
    rng = np.random.default_rng(5)
    d = distractor_set([(f"d{i:04d}.jpg", list(rng.normal(size=64))) for i in range(1000)])
    big = evaluate_identification(es, Protocol(gallery_sizes=(5, None)), distractors=d)
    first, full = (s.as_dict() for s in big.sizes)
    assert full["gallery_size"] == 5 + 10 + 1000  # enrolled, the dataset's singletons, distractors
    assert first["gallery_size"] == 5 and first["nonmated_searches"] == 1015
    for g in (first, full):
        assert g["fnir_at_fpir"]["0.01"]["supported"] and g["fnir_at_fpir"]["0.01"]["note"] == ""
        assert not g["fnir_at_fpir"]["0.001"]["supported"]  # that needs 10,000 searches
    assert full["rank1"] == 1.0  # random distractors are far from every clustered identity
    text = "\n".join(big.lines())
    assert "(1,000 of them distractors)" in text and "gallery all (1015)" in text


def test_images_without_a_face_are_misses_in_the_all_images_figures_only() -> None:
    es = embed_set([
        ("A/A_0001.jpg", list(E[0])), ("A/A_0002.jpg", list(E[0] + 0.1 * E[1])),
        ("A/A_0003.jpg", list(E[0] + 0.1 * E[2])),  # no face: a mated probe
        ("B/B_0001.jpg", list(E[3])),  # no face: B's gallery image fails to enrol
        ("B/B_0002.jpg", list(E[3] + 0.1 * E[1])),
        ("U/U_0001.jpg", list(E[5])), ("U/U_0002.jpg", list(E[6])),  # U_0002: no face
    ])
    face = np.array([True, True, False, False, True, True, False])
    p = Protocol(seed=0, unenrolled_fraction=1 / 3, gallery_sizes=(None,), max_rank=5)
    from faceledger.eval.identify import split

    assert split(es, p)["unenrolled"] == ["U"]
    detected = evaluate_identification(es.subset(face), p).sizes[0].as_dict()
    every = evaluate_identification(es, p, has_face=face, threshold=0.5,
                                    threshold_source="test").sizes[0].as_dict()
    # faces detected only: B is a single-image identity now (a distractor), A has one probe
    assert detected["mated_searches"] == 1 and detected["rank1"] == 1.0
    # all images: A's two probes (one without a face) and B's probe (its mate failed to enrol)
    assert every["mated_searches"] == 3 and every["rank1"] == pytest.approx(1 / 3)
    assert every["enrolment_failures"] == 1 and every["mated_probes_no_face"] == 1
    assert every["gallery_size"] == 1
    assert every["operating_threshold"]["fnir"] == pytest.approx(2 / 3)
    # a non-mated probe with no face returns no candidate: no false positive, still counted
    assert every["nonmated_searches"] == 2 and every["nonmated_probes_no_face"] == 1
    assert every["operating_threshold"]["fpir"] == 0.0


def test_all_images_equal_detected_only_when_every_image_has_a_face() -> None:
    es = clustered(12, [3, 2, 1])
    a = evaluate_identification(es, Protocol()).sizes
    b = evaluate_identification(es, Protocol(), has_face=np.ones(len(es.paths), dtype=bool)).sizes
    assert [s.as_dict() for s in a] == [s.as_dict() for s in b]


def test_byte_identical_probe_and_gallery_images_are_flagged() -> None:
    es = two_people()
    digests = ["a1", "a1", "b1", "b2", "u1", "u2"]  # A's probe is a copy of A's gallery image
    g = evaluate_identification(es, PROTOCOL, digests=digests).sizes[0].as_dict()
    assert g["identical_pairs"] == 1
    w = g["without_identical_pairs"]
    assert g["mated_searches"] == 2 and w["mated_searches"] == 1 and w["nonmated_searches"] == 2
    assert w["rank1"] == 1.0
    clean = evaluate_identification(es, PROTOCOL, digests=["a1", "a2", "b1", "b2", "u1", "u2"])
    d = clean.sizes[0].as_dict()
    assert d["identical_pairs"] == 0 and "without_identical_pairs" not in d
    nonmate = evaluate_identification(es, PROTOCOL, digests=["a1", "a2", "b1", "b2", "b1", "u2"])
    assert nonmate.sizes[0].as_dict()["identical_pairs"] == 1  # a non-mated probe copies B's
    assert any("byte-identical" in line for line in
               evaluate_identification(es, PROTOCOL, digests=digests).lines())


def _write(root: Path, rel: str, data: bytes) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)


PNG = b"\x89PNG\r\n\x1a\n"  # enough for an image-file check by content


def test_distractor_folder_rules(tmp_path: Path) -> None:
    lab = tmp_path / "labelled"
    for rel in ("Ann/1.png", "Ann/2.png", "Bob/1.png", "Cy/1.png"):
        _write(lab, rel, PNG + rel.encode())
    paths, labelled = walk_images(lab)
    assert labelled and len(paths) == 4
    files = select(lab, {"Ann", "Zed"})
    assert files.paths == ["Bob/1.png", "Cy/1.png"]
    assert files.excluded_identities == 1 and files.excluded_images == 2 and files.found == 4
    assert len(select(lab, set(), limit=3, seed=1).paths) == 3
    assert select(lab, set(), limit=3, seed=1) == select(lab, set(), limit=3, seed=1)
    flat = tmp_path / "flat"
    for rel in ("a.png", "sub/b.png", "sub/deeper/c.png"):
        _write(flat, rel, PNG + rel.encode())
    fp, flat_labelled = walk_images(flat)
    assert not flat_labelled and len(fp) == 3
    assert select(flat, {"sub"}).excluded_images == 0  # names only count in a labelled folder


def test_prepare_drops_no_face_identical_and_duplicate_files(tmp_path: Path) -> None:
    for rel, data in (("x.png", b"dataset copy"), ("y.png", b"y"), ("z.png", b"y"),
                      ("w.png", b"w"), ("v.png", b"v")):
        _write(tmp_path, rel, data)
    es = distractor_set([(p, list(E[i])) for i, p in
                         enumerate(["v.png", "w.png", "x.png", "y.png", "z.png"])])
    es.root = tmp_path
    es.detected[0] = False  # v.png: no face
    files = select(tmp_path, set())
    used, info = prepare(es, files, sha256_files(tmp_path, ["x.png"]))
    assert used.paths == ["w.png", "y.png"]
    assert info["no_face"] == 1 and info["identical_to_dataset"] == 1 and info["duplicates"] == 1
    assert info["faces"] == 2 and not info["labelled"]
    assert used.identities.tolist() == ["w.png", "y.png"]


def test_card_shows_the_calibration_in_force_and_the_threshold_limits(tmp_path: Path) -> None:
    row = {"id": 7, "model_id": "m", "threshold": 0.9321, "target_fmr": 1e-5,
           "gallery_size": 5000, "dataset": "own photos: 800 images"}
    c = card_mod.calibration_in_force(row, {"calibrated_at": "2027-01-02 10:00 UTC"},
                                      "active calibration of /home")
    data = card_mod.CardData("m", {"model id": "m"}, [], calibration=c,
                             version={"faceledger": "test", "git": None})
    md = card_mod.build(data, tmp_path).markdown()
    for text in ("7 (active calibration of /home)", "own photos: 800 images", "0.9321",
                 "| target FMR | 1e-05 |", "5,000", "2027-01-02 10:00 UTC", "FPIR 1 in 84",
                 "18-55%", "faceledger calibrate --dataset DIR", "--distractors"):
        assert text in md, text
    packaged = card_mod.calibration_in_force(
        {"threshold": 0.96, "target_fmr": 1e-6, "dataset": "LFW ..., 2026-11-27"}, {},
        "packaged calibration")
    assert packaged["id"] is None and packaged["date"] == "2026-11-27"
    none = card_mod.build(card_mod.CardData("m", {}, [], version={"faceledger": "t", "git": None}),
                          tmp_path).markdown()
    assert "No calibration is in force" in none
