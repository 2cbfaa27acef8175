"""The identification protocol and its figures on synthetic embeddings with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from faceledger.eval.identify import Protocol, evaluate_identification, split
from tests.eval.synth import clustered, embed_set


def test_split_follows_the_protocol() -> None:
    es = clustered(10, [3, 2, 1])  # ids 0,3,6,9: 3 images; 1,4,7: 2; 2,5,8: 1 (singletons)
    parts = split(es, Protocol(seed=1, unenrolled_fraction=0.5))
    assert len(parts["enrolled"]) == 3 and len(parts["unenrolled"]) == 4  # round(7 / 2)
    assert not set(parts["enrolled"]) & set(parts["unenrolled"])
    assert sorted(es.identities[i] for i in parts["distractors"]) == ["id002", "id005", "id008"]
    for ident in parts["enrolled"]:
        mate = parts["mate"][ident]
        assert es.paths[mate].endswith("_0001.jpg")  # the first image is enrolled
        assert all(es.identities[i] == ident and i != mate for i in parts["probes"][ident])
    assert all(es.identities[i] in parts["unenrolled"] for i in parts["nonmated"])
    again = split(es, Protocol(seed=1, unenrolled_fraction=0.5))
    assert again["enrolled"] == parts["enrolled"]  # deterministic


def test_well_separated_identities_are_all_found() -> None:
    es = clustered(40, [3, 1], noise=0.05)
    rep = evaluate_identification(es, Protocol(gallery_sizes=(5, 12, None)), threshold=0.9,
                                  threshold_source="test")
    sizes = [s.gallery for s in rep.sizes]
    # 20 multi-image ids: 10 enrolled, 10 unenrolled; 20 singletons are distractors
    assert rep.counts["enrolled_identities"] == 10 and rep.counts["distractors"] == 20
    assert sizes == [5, 12, 30]
    small = rep.sizes[0].as_dict()
    assert small["enrolled_identities"] == 5 and small["mated_searches"] == 10
    assert rep.sizes[1].as_dict()["distractors"] == 2
    for s in rep.sizes:
        d = s.as_dict()
        assert d["rank1"] == 1.0 and d["rank5"] == 1.0
        assert d["nonmated_searches"] == 30
        assert d["fnir_at_fpir"]["0.01"]["fnir"] == 0.0
        assert not d["fnir_at_fpir"]["0.01"]["supported"]  # 30 searches < 10 / 0.01
        assert d["operating_threshold"]["fpir"] == 0.0 and d["operating_threshold"]["fnir"] == 0.0
        assert d["investigation"]["fnir"] == 0.0
    assert rep.sizes[-1].label == "all (30)"
    assert any("rank-1 100.00%" in line for line in rep.lines())


def test_known_ranks_and_open_set_errors() -> None:
    e = np.eye(6)
    es = embed_set([
        ("A/A_0001.jpg", list(e[0])), ("A/A_0002.jpg", list(0.6 * e[0] + 0.8 * e[1])),  # rank 2
        ("B/B_0001.jpg", list(e[1])), ("B/B_0002.jpg", list(e[1] + 0.1 * e[5])),  # rank 1
        ("U/U_0001.jpg", list(0.95 * e[0] + 0.31 * e[4])),  # non-mated, top score ~0.95
        ("U/U_0002.jpg", list(e[3])),  # non-mated, top score 0
    ])
    # fraction 1/3 of the 3 multi-image identities: U unenrolled for this seed
    protocol = Protocol(seed=0, unenrolled_fraction=1 / 3, gallery_sizes=(None,), max_rank=5)
    assert split(es, protocol)["unenrolled"] == ["U"]
    d = evaluate_identification(es, protocol).sizes[0].as_dict()
    assert d["gallery_size"] == 2 and d["mated_searches"] == 2 and d["nonmated_searches"] == 2
    assert d["rank1"] == 0.5 and d["rank5"] == 1.0
    assert d["cmc"] == [0.5, 1.0]  # the gallery holds 2: ranks stop at 2
    at = d["fnir_at_fpir"]["0.01"]  # no false positive allowed: threshold above 0.95
    assert at["fpir"] == 0.0 and at["fnir"] == 0.5 and 0.95 < at["threshold"] < 0.951
    assert at[f"fnir_rank{protocol.candidates}"] == 0.5  # A's mate (0.6) is below it at any rank


def test_no_enrolled_identity_is_an_error() -> None:
    from faceledger.errors import ValidationError

    with pytest.raises(ValidationError):
        evaluate_identification(clustered(4, [1]), Protocol())
