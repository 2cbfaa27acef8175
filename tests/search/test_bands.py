"""Calibrated bands on every result, and the probe-image / duplicate marks (issue 10, part 6)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from faceledger.errors import ValidationError
from faceledger.gallery.ingest import Ingest
from faceledger.governance.calibration import CalibrationInfo, add_calibration, packaged_defaults
from faceledger.search.bands import duplicate_marks, make_bands, table_rows, threshold_at
from faceledger.search.results import search_detail
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.photos import astronaut_face, collage, encode, grace_hopper


def req(**kw: object) -> SearchRequest:
    base: dict[str, object] = dict(case_ref="CASE-B", purpose="criminal investigation",
                                   offence="robbery", legal_basis="test basis", top_k=10)
    base.update(kw)
    return SearchRequest(**base)  # type: ignore[arg-type]


def packaged() -> CalibrationInfo:
    row = packaged_defaults()[0]
    return CalibrationInfo(1, row["model_id"], row["threshold"], row["target_fmr"],
                           row["gallery_size"], row["dataset"], row["details"])


def test_thresholds_come_from_the_calibration_table() -> None:
    cal = packaged()
    rows = table_rows(cal.details)
    assert [f for f, _ in rows] == [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
    b = make_bands(cal, possible_fmr=1e-4)
    # likely = the identify threshold at its FMR; possible = the table's 1e-4 row.
    assert (b.likely.threshold, b.likely.fmr, b.likely.how) == (0.9613, 1e-6,
                                                                "calibration threshold")
    assert (b.possible.threshold, b.possible.fmr, b.possible.how) == (0.9406, 1e-4, "table")
    assert b.band(0.97) == "likely" and b.band(0.9613) == "likely"
    assert b.band(0.95) == "possible" and b.band(0.9406) == "possible"
    assert b.band(0.89) == "unlikely"
    d = b.as_dict()
    assert d["likely"]["fmr"] == 1e-6 and d["possible"]["threshold"] == 0.9406
    assert d["scale"] == [0.8, 1.0] and d["calibration_id"] == 1


def test_interpolation_in_log_fmr_and_refusals() -> None:
    rows = table_rows(packaged().details)
    t, how = threshold_at(rows, math.sqrt(1e-4 * 1e-5))  # half-way in log10(FMR)
    assert how == "interpolated" and t == pytest.approx((0.9406 + 0.9525) / 2, abs=1e-6)
    with pytest.raises(ValidationError, match=r"covers FMR 1e-06-0\.01"):
        threshold_at(rows, 0.1)  # never extrapolated
    with pytest.raises(ValidationError, match="looser"):
        make_bands(packaged(), possible_fmr=1e-7)
    likely_at_1e5 = make_bands(packaged(), possible_fmr=1e-4, likely_fmr=1e-5)
    assert likely_at_1e5.likely.threshold == 0.9525 and likely_at_1e5.likely.how == "table"


def test_duplicate_and_probe_marks() -> None:
    marks = duplicate_marks("p" * 64, [(1, 10, "p" * 64), (2, 11, "a" * 64), (3, 10, "p" * 64),
                                       (4, 12, "a" * 64), (5, 13, "b" * 64)])
    assert [m[0] for m in marks] == [True, False, True, False, False]
    # rank 3 is another face of rank 1's photo: not a duplicate; rank 4 is rank 2's bytes again
    assert [m[1] for m in marks] == [None, None, None, {"rank": 2, "why": "same_bytes"}, None]


@pytest.fixture
def banded(world: World, tmp_path: Path) -> World:
    """The astronaut in two collections (same bytes), Grace Hopper, and a two-face collage."""
    d = tmp_path / "g"
    d.mkdir()
    (d / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (d / "grace.jpg").write_bytes(encode(grace_hopper()))
    (d / "collage.jpg").write_bytes(encode(collage()))
    (d / "m.csv").write_text("path,source_url,page_url,title,captured_at\n"
                             "astronaut.jpg,https://example.org/a.jpg,,Astronaut portrait,"
                             "2021-07-20T10:00:00Z\n")
    Ingest(world.app, world.admin).run([d], "gallery", d / "m.csv")
    d2 = tmp_path / "g2"
    d2.mkdir()
    (d2 / "copy.jpg").write_bytes(encode(astronaut_face()))
    from faceledger.gallery.collections import add_collection

    with world.app.db.write() as s:
        add_collection(s, "press", "press photos", "", actor=world.admin)
    Ingest(world.app, world.admin).run([d2], "press")
    return world


def test_search_results_are_banded_and_marked(banded: World) -> None:
    app = banded.app
    res = run_search(app, banded.investigator, encode(astronaut_face()), req())
    assert res.schema_version == 2 and res.bands is not None
    assert res.bands["likely"] == {"threshold": 0.9613, "fmr": 1e-6,
                                   "how": "calibration threshold"}
    assert res.bands["possible"] == {"threshold": 0.9257, "fmr": 1e-3, "how": "table"}
    c = res.candidates
    for cand in c:
        assert cand.band == ("likely" if cand.similarity >= 0.9613 else "possible"
                             if cand.similarity >= 0.9257 else "unlikely")
    # The probe's own bytes are in the gallery twice (two collections) and in the collage.
    own = [x for x in c if x.probe_image]
    assert len(own) == 2 and {x.collection for x in own} == {"gallery", "press"}
    assert all(x.band == "likely" for x in own)
    first, second = sorted(own, key=lambda x: x.rank)
    assert first.duplicate_of is None
    assert second.duplicate_of == {"rank": first.rank, "why": "same_bytes"}
    titled = [x for x in c if x.title == "Astronaut portrait"]
    assert titled and (titled[0].captured_at or "").startswith("2021-07-20T10:00:00")
    # The collage holds two faces (two people): the second one reached is no duplicate.
    by_image: dict[int, list[int]] = {}
    for x in c:
        by_image.setdefault(x.image_id, []).append(x.rank)
    pairs = [ranks for ranks in by_image.values() if len(ranks) == 2]
    assert len(pairs) == 1
    later = next(x for x in c if x.rank == pairs[0][1])
    assert later.duplicate_of is None
    grace = [x for x in c if x.band == "unlikely"]
    assert grace, "other people fall below both thresholds"


def test_bands_follow_the_calibration_data(banded: World) -> None:
    """Thresholds are data: a calibration row with another table moves the bands, and a search
    read back later keeps the bands it was shown with."""
    app = banded.app
    first = run_search(app, banded.investigator, encode(grace_hopper()), req())
    assert [x.probe_image for x in first.candidates][:1] == [True]  # grace.jpg itself
    grace = next(x for x in first.candidates if not x.probe_image and x.similarity > 0.9)
    others = [x for x in first.candidates if x.similarity < grace.similarity - 0.05]
    assert others
    # A calibration whose looser row sits just below this mate's score.
    mid = round(grace.similarity - 0.01, 4)
    with app.db.write() as s:
        add_calibration(s, app.model_id, 0.999, 1e-6, 10_000, "test table",
                        {"table": [{"fmr": 1e-3, "threshold": mid},
                                   {"fmr": 1e-6, "threshold": 0.999}]}, actor="root")
    second = run_search(app, banded.investigator, encode(grace_hopper()), req())
    assert second.bands and second.bands["possible"] == {"threshold": mid, "fmr": 1e-3,
                                                         "how": "table"}
    again = {x.face_id: x.band for x in second.candidates}
    assert again[grace.face_id] == "possible"
    assert all(again[o.face_id] == "unlikely" for o in others)
    # Read back: each search keeps the calibration in force when it ran.
    old = search_detail(app, banded.investigator, first.search_id)
    new = search_detail(app, banded.investigator, second.search_id)
    assert old["bands"]["likely"]["threshold"] == 0.9613
    assert new["bands"]["likely"]["threshold"] == 0.999
    assert {c["face_id"]: c["band"] for c in new["candidates"]} == again
    assert new["face"] == 1
    marked = [c for c in new["candidates"] if c["probe_image"]]
    assert [c["image_sha256"] for c in marked] and all(
        c["image_sha256"] == new["probe_sha256"] for c in marked)
    # An out-of-table rate is never extrapolated: the closest row is used, and the result says so.
    app.settings.band_possible_fmr = 0.5
    loose = run_search(app, banded.investigator, encode(grace_hopper()), req())
    assert loose.bands is not None
    assert loose.bands["possible"]["fmr"] == 1e-3  # the test table's loosest row
    assert "outside this calibration's table" in loose.bands["possible"]["how"]
    # A past search read back under that setting gets the same closest-row bands.
    back = search_detail(app, banded.investigator, second.search_id)
    assert back["bands"]["possible"]["fmr"] == 1e-3 and back["candidates"][0]["band"] is not None


def test_calibrate_writes_the_rows_bands_need() -> None:
    from faceledger.eval import calibrate as cal
    from tests.eval.synth import clustered

    es = clustered(60, [2, 1], noise=0.8, seed=2)
    res = cal.calibrate(es, target_fmr=0.01, band_fmrs=(0.05, 0.123))
    table = res.details["table"]
    fmrs = [r["fmr"] for r in table]
    assert {0.01, 0.05, 0.123} <= set(fmrs) and fmrs == sorted(fmrs, reverse=True)
    assert next(r for r in table if r["fmr"] == 0.01)["threshold"] == res.threshold
    info = CalibrationInfo(7, "m", res.threshold, res.target_fmr, None, "synthetic", res.details)
    b = make_bands(info, possible_fmr=0.123)
    assert b.possible.how == "table" and b.possible.threshold < b.likely.threshold
    assert b.likely.threshold == res.threshold
    # A band rate the data cannot support gets no row, and a warning says so.
    low = cal.calibrate(es, target_fmr=0.01, band_fmrs=(1e-9,))
    assert any("band FMR(s) 1e-09" in w for w in low.warnings)
