"""The LFW pairs-file parser: both header forms, and clear errors for malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceledger.errors import ValidationError
from faceledger.eval.pairs import load_pairs, parse_pairs

VIEW2 = "2\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\nCid\t2\t4\nDee\t1\tEve\t12\n"


def test_folds_format() -> None:
    ps = parse_pairs(VIEW2, "pairs.txt")
    assert not ps.single_set and ps.folds == 2 and ps.per_fold == 1
    assert [(p.a, p.b, p.same, p.fold) for p in ps.pairs] == [
        ("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", True, 0),
        ("Ann/Ann_0001.jpg", "Bob/Bob_0003.jpg", False, 0),
        ("Cid/Cid_0002.jpg", "Cid/Cid_0004.jpg", True, 1),
        ("Dee/Dee_0001.jpg", "Eve/Eve_0012.jpg", False, 1),
    ]
    assert ps.images()[0] == "Ann/Ann_0001.jpg" and len(ps.images()) == 7
    assert "2 folds x (1 matched + 1 mismatched" in ps.protocol


def test_single_set_format_gets_ten_folds() -> None:
    matched = "".join(f"P{i}\t1\t2\n" for i in range(20))
    mismatched = "".join(f"P{i}\t1\tQ{i}\t1\n" for i in range(20))
    ps = parse_pairs(f"20\n{matched}{mismatched}\n\n", "pairsDevTest.txt")
    assert ps.single_set and ps.folds == 10 and ps.per_fold == 20 and len(ps.pairs) == 40
    # consecutive chunks of 2 matched + 2 mismatched pairs per fold
    assert [p.fold for p in ps.pairs[:20]] == [i // 2 for i in range(20)]
    assert [p.fold for p in ps.pairs[20:]] == [i // 2 for i in range(20)]
    assert "no folds in the file" in ps.protocol and "10-fold" in ps.protocol


def test_windows_line_ends_and_spaces() -> None:
    ps = parse_pairs("1 1\r\nAnn 1 2\r\nAnn 1 Bob 1\r\n")
    assert len(ps.pairs) == 2 and ps.pairs[1].b == "Bob/Bob_0001.jpg"


def test_load_pairs_from_file(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text(VIEW2)
    assert len(load_pairs(tmp_path / "p.txt").pairs) == 4
    with pytest.raises(ValidationError, match="cannot read pairs file"):
        load_pairs(tmp_path / "missing.txt")


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("ten\t300\n", "line 1: expected a header"),
    ("1\t2\t3\nAnn\t1\t2\n", "line 1: expected a header"),
    ("2\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\n", "promises 4 pair lines, the file has 2"),
    ("1\t1\nAnn\t1\tBob\t2\nAnn\t1\t2\n", "line 2: expected a matched pair"),
    ("1\t1\nAnn\t1\t2\nAnn\t1\t2\n", "line 3: expected a mismatched pair"),
    ("1\t1\nAnn\tone\t2\nAnn\t1\tBob\t1\n", "line 2: image number 'one' is not an integer"),
    ("1\t1\nAnn\t0\t2\nAnn\t1\tBob\t1\n", "line 2: image number 0 must be 1 or more"),
    ("1\t1\nAnn\t1\t2\nAnn\t1\tAnn\t3\n", "line 3: a mismatched pair names the same person"),
    ("1\t1\n\nAnn\t1\tBob\t1\n", "line 2: empty line"),
])
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_pairs(text, "p.txt")
