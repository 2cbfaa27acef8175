"""Demographic differentials on a small hand-made set."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceledger.errors import ValidationError
from faceledger.eval.groups import _ratio, group_report, load_groups, parse_groups
from tests.eval.synth import embed_set

# group X: a1 (two images, mate score 0.8), a2 (non-mate scores 0.6 and 0.96 with a1)
# group Y: b1 (two images, mate score 0.0), b2 (non-mate scores 0.6 and 0.8 with b1)
# X and Y are orthogonal: cross-group scores are 0. z (not in the groups file) is left out.
ES = embed_set([
    ("a1/1.jpg", [1, 0, 0, 0, 0]), ("a1/2.jpg", [0.8, 0.6, 0, 0, 0]),
    ("a2/1.jpg", [0.6, 0.8, 0, 0, 0]),
    ("b1/1.jpg", [0, 0, 1, 0, 0]), ("b1/2.jpg", [0, 0, 0, 1, 0]),
    ("b2/1.jpg", [0, 0, 0.6, 0.8, 0]),
    ("z/1.jpg", [0, 0, 0, 0, 1]),
])
GROUPS = "identity,group\na1,X\na2,X\nb1,Y\nb2,Y\n"


def test_rates_per_group() -> None:
    rep = group_report(ES, parse_groups(GROUPS), 0.7, threshold_source="test", block=2)
    d = rep.as_dict()
    x, y = d["groups"]
    assert (x["group"], x["identities"], x["images"]) == ("X", 2, 3)
    assert (x["mate_pairs"], x["false_non_matches"], x["fnmr"]) == (1, 0, 0.0)
    assert (x["nonmate_pairs"], x["false_matches"], x["fmr"]) == (2, 1, 0.5)  # 0.96 >= 0.7
    assert (y["mate_pairs"], y["false_non_matches"], y["fnmr"]) == (1, 1, 1.0)  # 0.0 < 0.7
    assert (y["nonmate_pairs"], y["false_matches"], y["fmr"]) == (2, 1, 0.5)  # 0.8 >= 0.7
    assert d["cross_group"]["nonmate_pairs"] == 9 and d["cross_group"]["false_matches"] == 0
    assert d["unassigned_identities"] == 1
    assert d["fmr_ratio_worst_best"] == 1.0
    assert d["fnmr_ratio_worst_best"] is None  # the best group has no errors
    text = "\n".join(rep.lines())
    assert "undefined" in text and "(cross-group)" in text


def test_threshold_moves_the_rates() -> None:
    d = group_report(ES, parse_groups(GROUPS), 0.9).as_dict()
    x, y = d["groups"]
    assert x["fmr"] == 0.5 and y["fmr"] == 0.0 and x["fnmr"] == 1.0 and y["fnmr"] == 1.0
    assert d["fnmr_ratio_worst_best"] == 1.0 and d["fmr_ratio_worst_best"] is None


def test_ratio() -> None:
    assert _ratio([0.02, 0.01, None]) == 2.0
    assert _ratio([0.0, 0.0]) == 1.0
    assert _ratio([None]) is None


def test_groups_file(tmp_path: Path) -> None:
    f = tmp_path / "g.csv"
    f.write_text("\ufeffIdentity,Group,extra\na1,X,1\nb1,Y,2\n", "utf-8")
    assert load_groups(f) == {"a1": "X", "b1": "Y"}
    with pytest.raises(ValidationError, match="identity,group"):
        parse_groups("name,group\na,X\n")
    with pytest.raises(ValidationError, match="line 3"):
        parse_groups("identity,group\na,X\na,Y\n")
    with pytest.raises(ValidationError, match="line 2"):
        parse_groups("identity,group\na,\n")
    with pytest.raises(ValidationError, match="cannot read"):
        load_groups(tmp_path / "nope.csv")
