"""Metric code on small score sets whose answers were worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceledger.eval import metrics

# scores 0.9 0.8 0.7 0.6 0.5 0.4 with labels + + - + - -
S6 = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
L6 = [1, 1, 0, 1, 0, 0]


def test_roc_points() -> None:
    roc = metrics.roc_curve(S6, L6)
    third = 1 / 3
    assert np.allclose(roc.fpr, [0, 0, 0, third, third, 2 * third, 1])
    assert np.allclose(roc.tpr, [0, third, 2 * third, 2 * third, 1, 1, 1])
    assert roc.thresholds[0] == math.inf
    assert np.allclose(roc.thresholds[1:], S6)


def test_roc_merges_tied_scores() -> None:
    roc = metrics.roc_curve([0.5, 0.5, 0.2], [1, 0, 0])
    assert np.allclose(roc.fpr, [0, 0.5, 1]) and np.allclose(roc.tpr, [0, 1, 1])


def test_auc_is_the_mann_whitney_statistic() -> None:
    # 8 of the 9 (mated, non-mated) pairs are ordered correctly
    assert metrics.auc(metrics.roc_curve(S6, L6)) == pytest.approx(8 / 9)
    assert metrics.auc(metrics.roc_curve([0.5, 0.5], [1, 0])) == pytest.approx(0.5)  # tie = half
    assert metrics.auc(metrics.roc_curve([0.9, 0.1], [1, 0])) == pytest.approx(1.0)


def test_eer_exact_crossing() -> None:
    # at threshold 0.7: FPR = 1/3 (0.7 accepted), FNR = 1/3 (0.6 rejected)
    eer, thr = metrics.eer(metrics.roc_curve(S6, L6))
    assert eer == pytest.approx(1 / 3) and thr == 0.7


def test_eer_interpolated() -> None:
    # mated 0.9 0.8 0.7 0.4, non-mated 0.6 0.3: FNR stays 0.25 while FPR jumps 0 -> 0.5
    eer, thr = metrics.eer(metrics.roc_curve([0.9, 0.8, 0.7, 0.4, 0.6, 0.3], [1, 1, 1, 1, 0, 0]))
    assert eer == pytest.approx(0.25) and thr == 0.6


def test_threshold_at_rate_and_tar_at_far() -> None:
    neg = np.arange(100) / 100  # 0.00 .. 0.99
    t = metrics.threshold_at_rate(neg, 0.05)  # 5 may pass: just above the 6th largest, 0.94
    assert 0.94 < t <= 0.9400001
    assert (neg >= t).sum() == 5
    scores = np.r_[[0.945, 0.96, 0.5], neg]
    labels = np.r_[[1, 1, 1], np.zeros(100)]
    op = metrics.tar_at_far(scores, labels, 0.05)
    assert op.tar == pytest.approx(2 / 3) and op.far == pytest.approx(0.05)
    op = metrics.tar_at_far(scores, labels, 1e-3)  # none may pass: above the highest, 0.99
    assert op.tar == 0 and op.far == 0 and op.threshold > 0.99
    assert metrics.threshold_at_rate(neg, 1.0) == -math.inf


def test_threshold_at_rate_rejects_ties_at_the_cut() -> None:
    # three equal top scores: allowing 2 must reject all three
    t = metrics.threshold_at_rate([0.9, 0.9, 0.9, 0.1], 0.5)
    assert t > 0.9


def test_rates_at() -> None:
    fmr, fnmr = metrics.rates_at(S6, L6, 0.65)
    assert fmr == pytest.approx(1 / 3) and fnmr == pytest.approx(1 / 3)


def test_best_accuracy_threshold() -> None:
    t, acc = metrics.best_accuracy_threshold([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1])
    assert t == pytest.approx(0.25) and acc == 1.0
    # two optimal cuts, 0.15 and 0.35 (4 of 5 right): the lower median is taken
    t, acc = metrics.best_accuracy_threshold([0.1, 0.2, 0.3, 0.4, 0.5], [0, 1, 0, 1, 1])
    assert acc == pytest.approx(0.8) and t == pytest.approx(0.15)
    # three optimal cuts, 0.15, 0.35 and 0.55: the middle one
    t, acc = metrics.best_accuracy_threshold([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0, 1, 0, 1, 0, 1])
    assert acc == pytest.approx(4 / 6) and t == pytest.approx(0.35)
    # a cut between two equal scores (which would be 4/4 right) is not a threshold
    t, acc = metrics.best_accuracy_threshold([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1])
    assert acc == pytest.approx(0.75) and t == pytest.approx(0.3)


def test_kfold_accuracy_threshold_from_the_other_folds() -> None:
    # fold 0: mated .8 .6, non-mated .4 .55; fold 1: mated .9 .7, non-mated .3 .65
    scores = [0.8, 0.6, 0.4, 0.55, 0.9, 0.7, 0.3, 0.65]
    labels = [1, 1, 0, 0, 1, 1, 0, 0]
    folds = [0, 0, 0, 0, 1, 1, 1, 1]
    kf = metrics.kfold_accuracy(scores, labels, folds)
    # fold 0 tested at 0.675 (from fold 1): 0.6 is rejected; fold 1 at 0.575: 0.65 accepted
    assert kf.thresholds == pytest.approx([0.675, 0.575])
    assert kf.accuracies == [0.75, 0.75]
    assert kf.mean == 0.75 and kf.std == 0 and kf.sem == 0
    with pytest.raises(ValueError):
        metrics.kfold_accuracy(scores, labels, [0] * 8)


def test_kfold_ten_folds_separable() -> None:
    rng = np.random.default_rng(0)
    pos, neg = rng.uniform(0.6, 1, 300), rng.uniform(0, 0.4, 300)
    folds = np.r_[np.arange(300) % 10, np.arange(300) % 10]
    kf = metrics.kfold_accuracy(np.r_[pos, neg], np.r_[np.ones(300), np.zeros(300)], folds)
    assert kf.mean == 1.0 and len(kf.accuracies) == 10
    assert all(0.4 <= t <= 0.6 for t in kf.thresholds)


# ---------------------------------------------------------------- identification

def _unit(*xs: float) -> list[float]:
    v = np.array(xs, dtype=np.float64)
    return list(v / np.linalg.norm(v))


GALLERY = np.eye(4)[:3]  # identities A, B, C
GALLERY_IDS = ["A", "B", "C"]
MATED = np.array([_unit(1, 0, 0, 0.1),  # A: mate 0.995, rank 1
                  [0.8, 0.6, 0, 0],  # B: A scores 0.8 above its mate's 0.6: rank 2
                  _unit(0.5, 0.4, 0.3, 0.7)])  # C: mate lowest of the three: rank 3
MATED_IDS = ["A", "B", "C"]
NON = np.array([[0.7, 0, 0, math.sqrt(1 - 0.49)], [0, 0, 0.2, math.sqrt(1 - 0.04)]])
NON_IDS = ["D", "E"]


def test_search_ranks_and_scores() -> None:
    st = metrics.search(MATED, MATED_IDS, GALLERY, GALLERY_IDS, block=2)
    assert st.mate_rank.tolist() == [1, 2, 3]
    assert st.mate_score[1] == pytest.approx(0.6) and st.top1[1] == pytest.approx(0.8)
    non = metrics.search(NON, NON_IDS, GALLERY, GALLERY_IDS)
    assert non.has_mate.tolist() == [False, False] and non.mate_rank.tolist() == [0, 0]
    assert non.top1 == pytest.approx([0.7, 0.2])


def test_cmc() -> None:
    assert metrics.cmc([1, 2, 3], 3) == pytest.approx([1 / 3, 2 / 3, 1])
    assert metrics.cmc([1, 0, 7], 5) == pytest.approx([1 / 3] * 5)  # absent and deep mates


def test_fnir_fpir() -> None:
    mated = metrics.search(MATED, MATED_IDS, GALLERY, GALLERY_IDS)
    non = metrics.search(NON, NON_IDS, GALLERY, GALLERY_IDS)
    assert metrics.fpir(non.top1, 0.5) == 0.5
    assert metrics.fnir(mated.mate_score, mated.mate_rank, 0.5) == pytest.approx(2 / 3)
    assert metrics.fnir(mated.mate_score, mated.mate_rank, 0.5, max_rank=2) == pytest.approx(1 / 3)
    assert metrics.fnir(mated.mate_score, mated.mate_rank, -np.inf, max_rank=3) == 0
    op = metrics.fnir_at_fpir(mated.mate_score, mated.mate_rank, non.top1, 0.5)
    assert op.far == 0.5 and 1 - op.tar == pytest.approx(2 / 3) and 0.2 < op.threshold < 0.21
    op = metrics.fnir_at_fpir(mated.mate_score, mated.mate_rank, non.top1, 0.0)
    assert op.far == 0 and 0.69 < op.threshold < 0.71 and 1 - op.tar == pytest.approx(2 / 3)
    fp, fn = metrics.fnir_fpir_curve(mated.mate_score, mated.mate_rank, non.top1)
    assert fp.tolist() == [0.5, 1.0] and fn == pytest.approx([2 / 3, 2 / 3])


def test_fmr_fpir_conversion() -> None:
    assert metrics.fpir_for_fmr(1e-4, 1) == pytest.approx(1e-4)
    assert metrics.fpir_for_fmr(0.5, 2) == pytest.approx(0.75)
    fmr = metrics.fmr_for_fpir(1e-3, 10_000)
    assert fmr == pytest.approx(1.0005e-7, rel=1e-4)
    assert metrics.fpir_for_fmr(fmr, 10_000) == pytest.approx(1e-3)
