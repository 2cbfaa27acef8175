"""Threshold calibration from the empirical non-mate distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceledger.errors import ValidationError
from faceledger.eval import calibrate as cal
from tests.eval.synth import clustered


def brute(es: object) -> tuple[np.ndarray, np.ndarray]:
    v, ids = es.vectors.astype(np.float64), es.identities  # type: ignore[attr-defined]
    i, j = np.triu_indices(len(ids), 1)
    s = np.einsum("ij,ij->i", v[i], v[j])
    same = ids[i] == ids[j]
    return s[~same], s[same]


def test_scan_matches_brute_force_in_blocks() -> None:
    es = clustered(30, [3, 1, 2], noise=0.5, seed=3)
    non, mate = brute(es)
    scan = cal.scan_pairs(es.vectors, es.identities, keep=25, block=7)
    assert scan.n_nonmate == non.size == cal.nonmate_count(es.identities)
    assert scan.mate.size == mate.size
    assert np.allclose(scan.top, np.sort(non)[::-1][:25], atol=1e-6)
    assert scan.nonmate_hist.sum() == non.size and scan.mate_hist.sum() == mate.size
    i, j = scan.top_pairs[0]
    assert es.identities[i] != es.identities[j]
    assert float(es.vectors[i] @ es.vectors[j]) == pytest.approx(scan.top[0], abs=1e-6)


def test_threshold_allows_exactly_k_false_matches() -> None:
    es = clustered(40, [2, 1], noise=0.8, seed=5)
    non, _ = brute(es)
    for fmr in (0.01, 0.05, 0.2):
        scan = cal.scan_pairs(es.vectors, es.identities, keep=cal.keep_for([fmr], non.size))
        t, k = cal.threshold_for_fmr(scan, fmr)
        assert k == math.floor(fmr * non.size)
        kth = np.sort(non)[::-1][k]  # the (k+1)-th highest non-mate score
        assert t == pytest.approx(kth, abs=1e-6) and t > scan.top[k]  # just above it
        assert (scan.top >= t).sum() == k  # the k highest pass, the (k+1)-th does not


def test_calibrate_picks_the_threshold_and_reports_it() -> None:
    es = clustered(40, [2, 1], noise=0.8, seed=5)
    non, mate = brute(es)
    res = cal.calibrate(es, target_fmr=0.01)
    k = math.floor(0.01 * non.size)
    assert res.details["false_matches_allowed"] == k
    kth = np.sort(non)[::-1][k]  # the (k+1)-th highest non-mate score
    assert kth < res.threshold <= kth + 2e-6  # just above it, rounded up to 1e-6
    assert res.details["false_matches_at_threshold"] == (non >= res.threshold).sum() <= k
    assert res.details["fnmr"] == pytest.approx((mate < res.threshold).mean())
    assert res.target_fmr == 0.01 and res.gallery_size is None and not res.warnings
    assert any("threshold" in line for line in cal.describe(res))


def test_fpir_at_gallery_size_becomes_a_per_comparison_fmr() -> None:
    es = clustered(60, [2, 1], noise=0.8, seed=2)
    res = cal.calibrate(es, target_fpir=0.5, gallery_size=20)
    assert res.target_fmr == pytest.approx(1 - 0.5 ** (1 / 20))
    assert res.details["expected_fpir"] == pytest.approx(0.5)
    assert res.gallery_size == 20


def test_refuses_an_fmr_the_data_cannot_support() -> None:
    es = clustered(20, [2, 1], noise=0.8)
    n = cal.nonmate_count(es.identities)
    with pytest.raises(ValidationError, match="lowest FMR it supports") as err:
        cal.calibrate(es, target_fmr=1e-4)
    assert err.value.details["lowest_supported_fmr"] == pytest.approx(10 / n)
    res = cal.calibrate(es, target_fmr=1e-4, clamp=True)
    assert res.target_fmr == pytest.approx(10 / n) and res.warnings
    assert res.details["false_matches_at_threshold"] <= 10


@pytest.mark.parametrize("kwargs", [
    {}, {"target_fmr": 0.1, "target_fpir": 0.1}, {"target_fpir": 0.1},
    {"target_fmr": 0.0}, {"target_fmr": 1.5}, {"target_fmr": 0.1, "gallery_size": 0},
])
def test_bad_requests(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        cal.calibrate(clustered(20, [2]), **kwargs)  # type: ignore[arg-type]


def test_calibration_reports_the_threshold_per_fnmr_for_the_optout() -> None:
    """The opt-out's withholding threshold is read at a false non-match rate (recall): the
    calibration keeps, per FNMR, the threshold with at most floor(f x M) genuine pairs below."""
    es = clustered(60, [20], noise=0.8, seed=7)
    non, mate = brute(es)
    res = cal.calibrate(es, target_fmr=0.01)
    rows = {r["fnmr"]: r for r in res.details["fnmr_table"]}
    assert sorted(rows) == [0.005, 0.01, 0.02, 0.05]
    for f, r in rows.items():
        below = (mate < r["threshold"]).sum()
        assert below <= math.floor(f * mate.size) < (mate < r["threshold"] + 2e-6).sum()
        assert r["achieved_fnmr"] == pytest.approx(below / mate.size)
        if r["fmr"] is not None:
            assert r["fmr"] == pytest.approx((non >= r["threshold"]).sum() / non.size)
    assert rows[0.05]["fmr"] is not None  # within the kept scores at FMR 1e-2
    assert rows[0.005]["threshold"] < rows[0.01]["threshold"] < rows[0.05]["threshold"]
    assert any("FNMR 1% (opt-out withholding)" in line for line in cal.describe(res))
